"""The one aggregation rule: clip logits -> track score -> video score.

Training (validation metrics), scoring, evaluation and the service all call
:func:`aggregate`, with the :class:`AggregationConfig` stored in the checkpoint, so a
video gets the same score everywhere. Numpy only: no torch, no files.

The rule, in three steps:

1. **Track logit** — a trimmed mean of the track's clip logits (:func:`track_logit`):
   a few clips with a bad crop or motion blur must not decide a whole track.
2. **Track weight** in (0, 1] (:func:`track_weight`): short tracks and small faces are
   weak evidence (few frames, little resolution); full-size, long tracks weigh 1.
3. **Video logit** — "a video is fake if any person in it is fake": the maximum over
   tracks of each track's logit shrunk toward the video's consensus by its weight
   (:func:`video_logit`), so a tiny or short track can raise the score only in
   proportion to its weight.

Probabilities are ``sigmoid(logit / temperature + bias)`` clipped to ``[prob_clip,
1 - prob_clip]``: DFDC's log loss punishes a confident wrong 0 or 1 without bound. The
temperature undoes over- or under-confidence; the bias (0 unless calibration fitted one)
undoes a shift of every logit toward one class, which training data whose real and fake
faces come from different sources leaves behind.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from vidfake.utils.config import from_dict

_T_BOUNDS = (0.05, 20.0)  # temperatures fit_temperature searches


@dataclass(frozen=True)
class AggregationConfig:
    """The aggregation rule's numbers and the calibration (saved in every checkpoint)."""

    trim: float = 0.2  # fraction of clip logits trimmed from each end of a track
    min_track_frames: int = 4  # tracks with fewer frames weigh less
    min_face_px: float = 40.0  # tracks with smaller faces (box side, px) weigh less
    temperature: float = 1.0  # calibration: p = sigmoid(logit / temperature + bias)
    bias: float = 0.0  # calibration offset (0: temperature-only calibration)
    prob_clip: float = 1e-4  # probabilities are kept in [prob_clip, 1 - prob_clip]
    threshold: float = 0.5  # score >= threshold -> FAKE
    # a track's mean mouth-motion logit at or above this -> "mouth region looks re-generated";
    # set from development real videos (the head's own balance puts most of them above 0)
    mouth_threshold: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.trim < 0.5:
            raise ValueError(f"trim must be in [0, 0.5), got {self.trim}")
        if self.min_track_frames < 1:
            raise ValueError(f"min_track_frames must be >= 1, got {self.min_track_frames}")
        if not self.min_face_px > 0:
            raise ValueError(f"min_face_px must be > 0, got {self.min_face_px}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be finite and > 0, got {self.temperature}")
        if not math.isfinite(self.bias):
            raise ValueError(f"bias must be finite, got {self.bias}")
        if not 0.0 < self.prob_clip < 0.5:
            raise ValueError(f"prob_clip must be in (0, 0.5), got {self.prob_clip}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not math.isfinite(self.mouth_threshold):
            raise ValueError(f"mouth_threshold must be finite, got {self.mouth_threshold}")

    def to_dict(self) -> dict:
        """Plain values, as saved in checkpoints."""
        return asdict(self)

    def probability(self, logit: float) -> float:
        """The calibrated, clipped probability of a logit under this config."""
        return calibrated_probability(logit, self.temperature, self.prob_clip, self.bias)

    def calibrated_logit(self, logit: float) -> float:
        """The logit after this config's calibration, before the sigmoid and the clipping."""
        return calibrated_logit(logit, self.temperature, self.bias)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AggregationConfig:
        """Rebuild from :meth:`to_dict` output (a checkpoint's ``aggregation``); unknown keys
        raise a ``ValueError`` naming them."""
        return from_dict(cls, data, "aggregation config")


@dataclass(frozen=True)
class TrackEvidence:
    """What the model said about one face track."""

    track_id: int
    clip_logits: list[float]
    n_frames: int  # frames the track covers
    face_px: float  # typical face size (e.g. median box side), in pixels of the source frame


@dataclass(frozen=True)
class VideoDecision:
    """A video's verdict from its tracks (:func:`aggregate`)."""

    score: float  # calibrated probability that the video is fake
    logit: float  # the video logit, before temperature
    label: Literal["FAKE", "REAL"]
    track_scores: dict[int, float] = field(default_factory=dict)  # calibrated, unweighted
    track_weights: dict[int, float] = field(default_factory=dict)
    deciding_track: int = -1  # the track whose weighted logit is the video logit


def _finite_array(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinity: {arr.tolist()}")
    return arr


def track_logit(clip_logits: Sequence[float], trim: float) -> float:
    """Mean of a track's clip logits after dropping ``floor(trim * n)`` from each end.

    At least one clip is always kept; with one or two clips nothing can be trimmed
    symmetrically, so it is the plain mean.
    """
    x = np.sort(_finite_array(clip_logits, "clip_logits"))
    k = min(int(math.floor(trim * x.size)), (x.size - 1) // 2)
    return float(x[k : x.size - k].mean())


def track_weight(n_frames: int, face_px: float, config: AggregationConfig) -> float:
    """``min(1, n_frames / min_track_frames) * min(1, face_px / min_face_px)``, in (0, 1].

    Linear below the minimums (no cliff a track could fall off by one frame or one
    pixel) and never 0: every detected face counts a little.
    """
    if n_frames < 1:
        raise ValueError(f"a track covers at least one frame, got n_frames={n_frames}")
    if not (math.isfinite(face_px) and face_px > 0):
        raise ValueError(f"face_px must be finite and > 0, got {face_px}")
    return min(1.0, n_frames / config.min_track_frames) * min(1.0, face_px / config.min_face_px)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value where the sorted cumulative weight reaches half the total (the plain
    median when all weights are equal: the two middle values are averaged on a tie)."""
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(weights[order])
    half = cum[-1] / 2.0
    i = int(np.searchsorted(cum, half * (1.0 - 1e-12)))  # tolerate rounding in the sums
    if i + 1 < v.size and math.isclose(cum[i], half, rel_tol=1e-12):
        return float((v[i] + v[i + 1]) / 2.0)
    return float(v[i])


def _video_logit_and_track(track_logits: Sequence[float], track_weights: Sequence[float]) -> tuple[float, int]:
    x = _finite_array(track_logits, "track_logits (no face tracks: the caller reports that status)")
    w = _finite_array(track_weights, "track_weights")
    if x.shape != w.shape:
        raise ValueError(f"{x.size} track logits but {w.size} weights")
    if np.any((w <= 0) | (w > 1)):
        raise ValueError(f"track weights must be in (0, 1], got {w.tolist()}")
    base = _weighted_median(x, w)
    shrunk = w * x + (1.0 - w) * base
    i = int(np.argmax(shrunk))  # first track on a tie
    return float(shrunk[i]), i


def video_logit(track_logits: Sequence[float], track_weights: Sequence[float]) -> float:
    """``max_i (w_i * l_i + (1 - w_i) * m)``, ``m`` the weight-weighted median of the ``l_i``.

    A video is fake if any person in it is fake, hence the maximum. Each track is first
    pulled toward the consensus ``m`` in proportion to how little it weighs, so a short
    or tiny track can move the video above ``m`` only by ``w_i * (l_i - m)``; a
    full-weight track (w = 1) counts with its own logit. ``m`` is weighted so that a
    light track cannot drag the consensus itself (a plain median of two tracks would be
    half the light one). One track: its own logit, whatever its weight.

    Raises ValueError on an empty list: a video without a face is a status the caller
    reports, never a made-up score.
    """
    return _video_logit_and_track(track_logits, track_weights)[0]


def calibrated_logit(logit: float, temperature: float, bias: float = 0.0) -> float:
    """``logit / temperature + bias``: the logit whose sigmoid is the calibrated probability
    (an ensemble averages its members' calibrated logits)."""
    return float(logit) / temperature + bias


def calibrated_probability(logit: float, temperature: float, prob_clip: float, bias: float = 0.0) -> float:
    """``sigmoid(logit / temperature + bias)`` clipped to ``[prob_clip, 1 - prob_clip]``."""
    z = calibrated_logit(logit, temperature, bias)
    p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return min(max(p, prob_clip), 1.0 - prob_clip)


def aggregate(tracks: Sequence[TrackEvidence], config: AggregationConfig) -> VideoDecision:
    """The video decision from its face tracks (ValueError when there are none)."""
    if not tracks:
        raise ValueError("no face tracks: the caller reports that status, never a made-up score")
    ids = [t.track_id for t in tracks]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate track ids: {ids}")
    logits = [track_logit(t.clip_logits, config.trim) for t in tracks]
    weights = [track_weight(t.n_frames, t.face_px, config) for t in tracks]
    logit, i = _video_logit_and_track(logits, weights)
    score = config.probability(logit)
    return VideoDecision(
        score=score,
        logit=logit,
        label="FAKE" if score >= config.threshold else "REAL",
        track_scores={
            t.track_id: config.probability(x)
            for t, x in zip(tracks, logits)
        },
        track_weights={t.track_id: w for t, w in zip(tracks, weights)},
        deciding_track=ids[i],
    )


def _log_loss(logits: np.ndarray, signs: np.ndarray, temperature: float) -> float:
    # -log sigmoid(s * z / T) = log(1 + exp(-s * z / T)), stable for any magnitude
    return float(np.mean(np.logaddexp(0.0, -signs * logits / temperature)))


def _calibration_set(logits: Sequence[float], labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Logits and 0/1 labels as float arrays, checked: same length, finite, both classes
    present (with one class a calibration loss has no interior minimum to find)."""
    z = _finite_array(logits, "logits")
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if y.shape != z.shape:
        raise ValueError(f"{z.size} logits but {y.size} labels")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if y.min() == y.max():
        raise ValueError("fitting a calibration needs both real and fake examples")
    return z, y


def fit_temperature(logits: Sequence[float], labels: Sequence[int]) -> float:
    """The T in [0.05, 20] minimising the binary log loss of ``sigmoid(logit / T)``.

    Golden-section search on log T: the loss is convex in 1/T, hence unimodal in log T,
    so the search finds the minimum (or the nearer bound). Labels are 1 = fake, 0 = real;
    both classes are needed, otherwise the loss has no interior minimum to find.
    """
    z, y = _calibration_set(logits, labels)
    signs = np.where(y == 1, 1.0, -1.0)

    def loss(log_t: float) -> float:
        return _log_loss(z, signs, math.exp(log_t))

    a, b = math.log(_T_BOUNDS[0]), math.log(_T_BOUNDS[1])
    g = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > 1e-7:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = loss(d)
    return math.exp((a + b) / 2.0)


def fit_temperature_and_bias(logits: Sequence[float], labels: Sequence[int], balanced: bool = True,
                             iterations: int = 100) -> tuple[float, float]:
    """``(T, bias)`` minimising the log loss of ``sigmoid(logit / T + bias)`` (Platt scaling,
    fitted by Newton's method on the convex loss in ``(1/T, bias)``).

    ``balanced`` weighs each class as if the set were half real and half fake, so the bias
    removes the model's own lean toward one class but does not learn the calibration set's
    share of fakes (a development set rich in fakes would otherwise teach every later
    score to lean fake). Raises ValueError when the logits rank fakes *below* reals (no
    positive temperature fits) or when a class is missing.
    """
    z, y = _calibration_set(logits, labels)
    n_fake = y.sum()
    weights = np.where(y == 1, len(y) / (2 * n_fake), len(y) / (2 * (len(y) - n_fake))) if balanced \
        else np.ones_like(y)
    signs = np.where(y == 1, 1.0, -1.0)
    ones = np.ones_like(z)
    slope, bias = _fit_platt(np.stack([z, ones], axis=1), np.zeros_like(z), weights, signs, iterations)
    if not slope > 0:
        raise ValueError("the logits rank fakes below reals here: no positive temperature fits")
    temperature = min(max(1.0 / slope, _T_BOUNDS[0]), _T_BOUNDS[1])
    if temperature != 1.0 / slope:
        # separable (or nearly flat) logits: the joint fit ran towards an unbounded slope,
        # and its bias belongs to that slope. Refit the bias alone for the temperature
        # actually used, starting from the decision point the joint fit found.
        (bias,) = _fit_platt(ones[:, None], z / temperature, weights, signs, iterations,
                             start=np.array([bias / slope / temperature]))
    return temperature, bias


def _fit_platt(x: np.ndarray, offset: np.ndarray, weights: np.ndarray, signs: np.ndarray, iterations: int,
               start: np.ndarray | None = None) -> tuple[float, ...]:
    """``theta`` minimising the weighted log loss of ``sigmoid(x @ theta + offset)``: Newton's
    method on the convex loss, halving a step that does not lower it. From ``theta = 0``
    (p = 0.5 everywhere) unless ``start`` is given."""
    y = (signs > 0).astype(float)

    def loss(t: np.ndarray) -> float:
        return float(np.sum(weights * np.logaddexp(0.0, -signs * (x @ t + offset))))

    theta = np.zeros(x.shape[1]) if start is None else start.astype(float)
    current = loss(theta)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ theta + offset, -50, 50)))
        gradient = x.T @ (weights * (p - y))
        hessian = (x * (weights * p * (1 - p))[:, None]).T @ x + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        for _ in range(30):
            candidate = theta - step
            value = loss(candidate)
            if value <= current:
                break
            step = step / 2
        theta, improved = candidate, current - value
        current = value
        if np.abs(step).max() < 1e-10 or improved < 1e-12:
            break
    return tuple(float(v) for v in theta)
