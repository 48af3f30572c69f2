"""The parts of distributed scoring that need no second process: who a process is,
which files it takes, its shard file, and the run's resume and completeness rules."""
from __future__ import annotations

import json

import pytest

from vidfake.distributed import DistContext, ShardError, run_sharded
from vidfake.distributed.context import SLURM_BASE_PORT, first_host
from vidfake.distributed.group import ProcessGroup, Terminated
from vidfake.distributed.partition import FILE_OVERHEAD_BYTES, balanced_shards, file_cost
from vidfake.distributed.shard_store import ShardStore

# -- context -------------------------------------------------------------------------


def test_no_launcher_is_one_process():
    context = DistContext.from_env({"PATH": "/bin"})
    assert (context.rank, context.world_size, context.distributed, context.is_main) == (0, 1, False, True)


def test_torchrun_environment():
    env = {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "node1", "MASTER_PORT": "29500"}
    context = DistContext.from_env(env)
    assert context == DistContext(3, 8, 1, "torchrun", "node1", 29500)
    assert context.distributed and not context.is_main


def test_srun_step_environment_finds_the_first_node_and_a_job_port():
    env = {"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1",
           "SLURM_STEP_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "123456"}
    context = DistContext.from_env(env)
    assert context == DistContext(5, 8, 1, "slurm", "gpu07", SLURM_BASE_PORT + 3456)


def test_an_salloc_shell_without_a_step_stays_one_process():
    env = {"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_JOB_NODELIST": "gpu[07-08]"}
    assert not DistContext.from_env(env).distributed


@pytest.mark.parametrize("env", [{"RANK": "2", "WORLD_SIZE": "2"}, {"RANK": "x", "WORLD_SIZE": "2"}])
def test_a_broken_launcher_environment_is_an_error(env):
    with pytest.raises(ShardError, match="rank|environment"):
        DistContext.from_env(env)


@pytest.mark.parametrize("nodes, first", [
    ("node1", "node1"), ("gpu[07-09,12],cpu1", "gpu07"), ("a1,b2", "a1"), ("rack[2-3]-n[10-11]", "rack2-n10"),
])
def test_first_host_of_a_node_list(nodes, first):
    assert first_host(nodes) == first


# -- shares --------------------------------------------------------------------------


def test_every_item_goes_to_exactly_one_shard_in_ascending_order():
    costs = [5, 1, 9, 3, 3, 7, 2, 8, 6, 4]
    shards = balanced_shards(costs, 3)
    assert sorted(i for shard in shards for i in shard) == list(range(10))
    assert all(shard == sorted(shard) for shard in shards)
    assert balanced_shards(costs, 3) == shards  # deterministic


def test_shards_balance_cost_not_count():
    costs = [100, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10]
    assert balanced_shards(costs, 2) == [[0], list(range(1, 11))]
    costs = [7, 5, 4, 4, 3, 3, 2]
    assert [sum(costs[i] for i in shard) for shard in balanced_shards(costs, 3)] == [10, 10, 8]


def test_equal_costs_go_round_robin_and_spare_processes_get_nothing():
    assert balanced_shards([0, 0, 0, 0, 0], 2) == [[0, 2, 4], [1, 3]]
    assert balanced_shards([1, 2], 4) == [[1], [0], [], []]
    assert balanced_shards([], 3) == [[], [], []]
    with pytest.raises(ValueError):
        balanced_shards([1], 0)


def test_file_cost_is_size_plus_overhead(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 1000)
    assert file_cost(path) == 1000 + FILE_OVERHEAD_BYTES
    assert file_cost(tmp_path / "missing.mp4") == FILE_OVERHEAD_BYTES


# -- shard files -----------------------------------------------------------------------


def test_shard_round_trip_latest_run_wins_and_torn_lines_are_skipped(tmp_path):
    store = ShardStore(tmp_path / "shards", rank=1)
    store.append("a", 1, {"status": "failed"})
    store.append("b", 1, {"status": "ok"})
    with store.path.open("a") as handle:  # killed mid-write
        handle.write('{"key": "c", "ru')
    store.append("a", 2, {"status": "ok"})
    ShardStore(tmp_path / "shards", rank=0).append("d", 2, {"status": "ok"})
    entries = ShardStore(tmp_path / "shards", rank=0).read()
    assert {k: (e.run, e.record["status"]) for k, e in entries.items()} == {"a": (2, "ok"), "b": (1, "ok"), "d": (2, "ok")}
    assert store.path.read_text().count("\n") == 4  # the torn line kept apart from the next one
    store.clear()
    assert not (tmp_path / "shards").exists()


def test_numpy_values_go_through_the_default(tmp_path):
    np = pytest.importorskip("numpy")
    from vidfake.extract.folder import json_default

    store = ShardStore(tmp_path, rank=0, default=json_default)
    store.append("a", 1, {"frames": np.arange(3), "score": np.float32(0.5)})
    assert json.loads(store.path.read_text())["record"] == {"frames": [0, 1, 2], "score": 0.5}


# -- one process through the run's steps -------------------------------------------------


def _run(tmp_path, keys, process, **kwargs):
    with ProcessGroup(DistContext(), "run it again with --resume") as group:
        return run_sharded(keys, [1.0] * len(keys), process, tmp_path / "shards", group, **kwargs)


def test_records_come_back_in_item_order_whatever_order_they_were_emitted(tmp_path):
    def process(indices, emit):
        for index in reversed(indices):
            emit(index, {"n": index})

    assert _run(tmp_path, ["a", "b", "c"], process, resume=False) == [(0, {"n": 0}), (1, {"n": 1}), (2, {"n": 2})]


def test_resume_does_only_what_is_missing_and_retries_what_is_not_finished(tmp_path):
    seen = []

    def stops_after_two(indices, emit):
        for index in indices[:2]:
            emit(index, {"status": "failed" if index == 0 else "ok", "run": 1})
        raise Terminated()

    with pytest.raises(ShardError, match="SIGTERM.*--resume"):
        _run(tmp_path, ["a", "b", "c", "d"], stops_after_two, resume=False)

    def finishes(indices, emit):
        seen.extend(indices)
        for index in indices:
            emit(index, {"status": "ok", "run": 2})

    merged = _run(tmp_path, ["a", "b", "c", "d"], finishes, resume=True, finished=lambda r: r["status"] == "ok")
    assert seen == [0, 2, 3]  # "b" was finished; "a" failed, so it is tried again
    assert [(i, r["run"]) for i, r in merged] == [(0, 2), (1, 1), (2, 2), (3, 2)]


def test_a_fresh_run_forgets_old_shards_and_done_keys_are_not_returned(tmp_path):
    ShardStore(tmp_path / "shards", rank=3).append("a", 1, {"old": True})
    merged = _run(tmp_path, ["a", "b"], lambda indices, emit: [emit(i, {"old": False}) for i in indices],
                  resume=False, done={"b"})
    assert merged == [(0, {"old": False})]


def test_a_file_without_a_record_fails_the_merge_with_how_to_resume(tmp_path):
    with pytest.raises(ShardError, match=r"1 of 2 files have no result .*first: b.*--resume"):
        _run(tmp_path, ["a", "b"], lambda indices, emit: emit(indices[0], {}), resume=False)
