// vidfake web page: upload a file, follow its job, show the verdict.
// Plain JavaScript, no libraries and no external assets, so the page works offline.
// Every value from the server is put on the page with textContent (never innerHTML):
// file names and messages come from users.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 1000;
  const TOKEN_KEY = "vidfake-token";
  const state = { job: null, poll: null, thumbs: [] };

  // ---- API ------------------------------------------------------------------------------

  function authHeaders() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    return token ? { Authorization: "Bearer " + token } : {};
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
    if (response.status === 401) {
      showAuth();
      throw new Error("this server needs an access token");
    }
    return response;
  }

  async function detail(response) {
    try {
      const body = await response.json();
      return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch (e) {
      return response.statusText || "HTTP " + response.status;
    }
  }

  // ---- small helpers ----------------------------------------------------------------------

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pct(p) { return (100 * p).toFixed(1) + "%"; }
  // the mouth-motion head's finding, its score and the score from which it says "re-generated"
  function mouthText(m) {
    const from = m.threshold === undefined ? "" : `; re-generated from ${pct(m.threshold)}`;
    return `${m.finding} (${pct(m.score)}${from})`;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function showAuth() { $("auth").hidden = false; }

  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  // ---- model ------------------------------------------------------------------------------

  async function loadModel() {
    try {
      const response = await api("/v1/model");
      if (!response.ok) {
        $("model-info").textContent = "model: " + (await detail(response));
        if (response.status === 503) setTimeout(loadModel, 2000);
        return;
      }
      const m = await response.json();
      $("model-info").textContent = `model ${m.name} ${m.version} (${m.backbone}, plan ${m.plan}, threshold ${m.threshold}) on ${m.device}`;
      if (m.members && m.members.length) {
        $("model-info").textContent += `; an ensemble of ${m.members.length}: ` + m.members
          .map((x) => `${x.name} ${x.version} (weight ${x.weight}, sha256 ${x.sha256.slice(0, 12)})`).join(", ");
      }
      $("untrained").hidden = !m.untrained;
    } catch (e) {
      $("model-info").textContent = e.message;
    }
  }

  // ---- upload -----------------------------------------------------------------------------

  function upload(file) {
    showError("");
    stopPolling();
    $("result").hidden = true;
    $("progress").hidden = false;
    $("progress-bar").value = 0;
    $("progress-text").textContent = `uploading ${file.name}…`;
    const form = new FormData();
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest(); // fetch() reports no upload progress
    xhr.open("POST", "/v1/jobs");
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) $("progress-bar").value = (100 * event.loaded) / event.total;
    };
    xhr.onerror = () => {
      $("progress").hidden = true;
      showError("the upload failed: the connection was closed (is the file over the size limit?)");
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 202) {
        $("progress-bar").value = 100;
        $("progress-text").textContent = "queued";
        follow(body.id);
        refreshJobs();
        return;
      }
      $("progress").hidden = true;
      if (xhr.status === 401) showAuth();
      let message = `${file.name}: ${body.detail || xhr.statusText} (HTTP ${xhr.status})`;
      const retry = xhr.getResponseHeader("Retry-After");
      if (xhr.status === 503 && retry) message += `; try again in ${retry} s`;
      showError(message);
    };
    xhr.send(form);
  }

  async function tryExample() {
    // the server scores its own copy of the example clip: nothing is uploaded
    showError("");
    stopPolling();
    $("result").hidden = true;
    $("try-example").disabled = true;
    try {
      const response = await api("/v1/jobs/example", { method: "POST" });
      if (response.status !== 202) {
        let message = `the example: ${await detail(response)} (HTTP ${response.status})`;
        const retry = response.headers.get("Retry-After");
        if (response.status === 503 && retry) message += `; try again in ${retry} s`;
        showError(message);
        return;
      }
      const body = await response.json();
      $("example").hidden = true;
      $("progress").hidden = false;
      $("progress-text").textContent = "queued";
      follow(body.id);
      refreshJobs();
    } catch (e) {
      showError(e.message);
    } finally {
      $("try-example").disabled = false;
    }
  }

  // ---- job polling ------------------------------------------------------------------------

  function stopPolling() {
    if (state.poll) clearTimeout(state.poll);
    state.poll = null;
  }

  function follow(id) {
    stopPolling();
    state.job = id;
    history.replaceState(null, "", "#job=" + id);
    poll(id);
  }

  async function poll(id) {
    if (state.job !== id) return;
    let job;
    try {
      const response = await api("/v1/jobs/" + id);
      if (!response.ok) {
        $("progress").hidden = true;
        showError(await detail(response));
        return;
      }
      job = await response.json();
    } catch (e) {
      showError(e.message);
      return;
    }
    if (state.job !== id) return;
    if (job.status === "queued" || job.status === "running") {
      $("progress").hidden = false;
      $("progress-bar").removeAttribute("value"); // indeterminate while scoring
      $("progress-text").textContent = job.status === "queued"
        ? `${job.filename}: queued` + (job.queue_position ? ` (${job.queue_position} ahead)` : " (next)")
        : `${job.filename}: scoring…`;
      state.poll = setTimeout(() => poll(id), POLL_MS);
      return;
    }
    $("progress").hidden = true;
    refreshJobs();
    if (job.status === "failed") {
      $("result").hidden = true;
      showError(`${job.filename}: scoring failed: ${job.error}`);
      return;
    }
    render(job);
  }

  // ---- result -----------------------------------------------------------------------------

  const STATUS_TEXT = {
    no_face: "No face was found, so there is no score.",
    unreadable: "The file could not be decoded.",
    unsupported: "The file is not supported.",
  };

  function render(job) {
    const v = job.verdict;
    showError("");
    $("result").hidden = false;
    $("result-name").textContent = job.filename;
    const box = $("verdict");
    box.className = "verdict " + (v.status !== "ok" ? "none" : v.label === "FAKE" ? "fake" : "real");
    box.dataset.status = v.status;
    $("verdict-label").textContent = v.status === "ok" ? v.label : v.status.replace("_", " ");
    $("verdict-score").textContent = v.status === "ok" ? `fake probability ${pct(v.score)}` : "";
    const media = v.media || {};
    const size = media.width ? `${media.width}x${media.height}` : "";
    const length = media.duration ? `, ${media.duration.toFixed(1)} s` : "";
    $("verdict-note").textContent = (STATUS_TEXT[v.status] ? STATUS_TEXT[v.status] + " " : "") +
      (v.error ? v.error + " " : "") +
      `${v.kind} ${size}${length}; threshold ${v.threshold}; scored in ${(v.timings.total || 0).toFixed(2)} s.`;
    drawTimeline(v);
    showFaces(job);
    showHeatmaps(job);
    showLipSync(v);
    showMembers(v);
    const warnings = $("warnings");
    warnings.replaceChildren();
    for (const w of v.warnings) warnings.append(el("li", w));
    if (!v.warnings.length) warnings.append(el("li", "none", "muted"));
    $("verdict-json").textContent = JSON.stringify(v, null, 2);
  }

  function drawTimeline(v) {
    const plot = $("timeline");
    plot.replaceChildren();
    const points = v.timeline || [];
    const W = 900, H = 220, L = 44, R = 12, T = 12, B = 30;
    plot.setAttribute("viewBox", `0 0 ${W} ${H}`);
    plot.setAttribute("preserveAspectRatio", "none");
    const t0 = points.length ? points[0].time : 0;
    const t1 = points.length ? points[points.length - 1].time : 1;
    const span = t1 > t0 ? t1 - t0 : 1;
    const x = (t) => L + ((t - t0) / span) * (W - L - R);
    const y = (p) => T + (1 - p) * (H - T - B);
    for (const p of [0, 0.25, 0.5, 0.75, 1]) {
      plot.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y(p), y2: y(p) }));
      plot.append(svg("text", { x: L - 6, y: y(p) + 4, "text-anchor": "end" }, p.toFixed(2)));
    }
    plot.append(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    plot.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (span * i) / 4;
      plot.append(svg("text", { x: x(t), y: H - B + 16, "text-anchor": "middle" }, t.toFixed(1) + " s"));
    }
    plot.append(svg("line", { class: "threshold", x1: L, x2: W - R, y1: y(v.threshold), y2: y(v.threshold) }));
    // one polyline per run of consecutive sampled frames with a face: the line breaks at
    // frames without a face (grey dots at 0) and between the plan's segments (each point's
    // `segment`: frames between clips were never sampled, so nothing is drawn across them)
    let run = [];
    let previous = null;
    const flush = () => {
      if (run.length > 1) plot.append(svg("polyline", { class: "series", points: run.join(" ") }));
      run = [];
    };
    let scored = 0;
    for (const p of points) {
      if (previous !== null && p.segment !== previous) flush();
      previous = p.segment;
      if (p.score === null || p.score === undefined) {
        flush();
        plot.append(svg("circle", { class: "noface", cx: x(p.time), cy: y(0), r: 2.5 }));
        continue;
      }
      scored++;
      run.push(`${x(p.time).toFixed(1)},${y(p.score).toFixed(1)}`);
      const dot = svg("circle", { class: "point", cx: x(p.time), cy: y(p.score), r: 3, "data-frame": p.frame, "data-score": p.score });
      dot.append(svg("title", {}, `frame ${p.frame}, ${p.time.toFixed(2)} s: ${pct(p.score)}`));
      plot.append(dot);
    }
    flush();
    plot.dataset.points = String(scored);
    $("timeline-note").textContent = points.length
      ? `${points.length} sampled frames, ${scored} with a face; the dashed line is the threshold.`
      : "no frames were scored.";
  }

  async function showFaces(job) {
    for (const url of state.thumbs) URL.revokeObjectURL(url);
    state.thumbs = [];
    const box = $("faces");
    box.replaceChildren();
    const tracks = job.verdict.tracks || [];
    if (!tracks.length) {
      box.append(el("p", "no face tracks", "muted"));
      return;
    }
    const thumbs = Object.fromEntries((job.faces || []).map((f) => [f.track_id, f.url]));
    for (const t of tracks) {
      const card = el("div", null, "face");
      card.dataset.track = t.id;
      const img = el("img");
      img.alt = `face of track ${t.id}`;
      card.append(img);
      const fake = t.score >= job.verdict.threshold;
      card.append(el("div", pct(t.score), "score " + (fake ? "fake" : "real")));
      card.append(el("div", `track ${t.id}: ${t.frames} frames, weight ${t.weight.toFixed(2)}`));
      if (t.sync) card.append(el("div", `lip sync ${t.sync.confidence.toFixed(3)}, offset ${t.sync.offset_frames} frames`));
      if (t.mouth_motion) card.append(el("div", mouthText(t.mouth_motion)));
      box.append(card);
      if (thumbs[t.id]) loadThumb(img, thumbs[t.id]);
      else if (job.files_purged) img.alt = "thumbnail deleted after the retention period";
    }
  }

  async function loadThumb(img, url) {
    // fetched with the token (an <img src> cannot send one), shown from a blob URL
    try {
      const response = await api(url);
      if (!response.ok) return;
      const blobUrl = URL.createObjectURL(await response.blob());
      state.thumbs.push(blobUrl);
      img.src = blobUrl;
    } catch (e) { /* leave the grey box */ }
  }

  function showMembers(v) {
    // an ensemble's verdict lists each member's own score (one model: nothing to show)
    const list = $("members");
    const members = (v.model && v.model.members) || [];
    list.replaceChildren();
    for (const m of members) {
      const said = m.score === null || m.score === undefined ? m.status : pct(m.score);
      list.append(el("li", `${m.name} ${m.version} (weight ${m.weight}): ${said}`));
    }
    list.hidden = !members.length;
    $("members-title").hidden = !members.length;
  }

  function showHeatmaps(job) {
    // each face track's most suspicious frames with the heat map over the face (the job's
    // `heatmaps`: pictures kept with its thumbnails, fetched with the token like them)
    const box = $("heatmaps");
    box.replaceChildren();
    const maps = job.heatmaps || [];
    $("where").hidden = job.verdict.status !== "ok";
    if (!maps.length) {
      $("heatmaps-note").textContent = job.files_purged
        ? "The heat maps were deleted after the retention period."
        : "No heat maps for this job (the server draws none, or they could not be drawn: see the warnings).";
      return;
    }
    const methods = [...new Set(maps.map((m) => m.label))];
    $("heatmaps-note").textContent = `The most suspicious frames of each face: ${methods.join("; ")}. ` +
      "Hotter colours mark where the model sees the forgery; the white box is the hottest region.";
    for (const m of maps) {
      const card = el("figure", null, "heatmap");
      card.dataset.track = m.track_id;
      card.dataset.frame = m.frame;
      card.dataset.method = m.method;
      const img = el("img");
      img.alt = `heat map of track ${m.track_id}, frame ${m.frame}`;
      card.append(img);
      const caption = el("figcaption");
      caption.append(el("div", `track ${m.track_id}, ${m.time.toFixed(2)} s: ${pct(m.score)}`, "score"));
      caption.append(el("div", `map peak ${Number(m.peak).toPrecision(3)}`, "muted"));
      if (m.note) caption.append(el("div", m.note, "muted"));
      card.append(caption);
      box.append(card);
      loadThumb(img, m.url);
    }
  }

  function showLipSync(v) {
    const a = v.audio || {};
    let text;
    if (a.used) {
      text = `Audio and mouth movement compared: sync confidence ${Number(a.sync_confidence).toFixed(3)}, ` +
        `best offset ${a.offset_frames} frames.`;
    } else if (a.present) {
      text = "The file has audio, but lip sync was not checked: " + (a.reason || "no face track had enough frames") + ".";
    } else {
      text = "No lip-sync check: " + (a.reason || "no audio") + ".";
    }
    const m = a.mouth_motion;
    if (m) text += ` Mouth motion: ${mouthText(m)} on track ${m.track}.`;
    $("lipsync").textContent = text;
  }

  // ---- recent jobs ------------------------------------------------------------------------

  async function refreshJobs() {
    let list;
    try {
      const response = await api("/v1/jobs?limit=20");
      if (!response.ok) return;
      list = await response.json();
    } catch (e) {
      return;
    }
    $("example").hidden = list.jobs.length > 0; // offered until something has been scored
    const body = $("jobs");
    body.replaceChildren();
    for (const job of list.jobs) {
      const row = el("tr");
      row.dataset.id = job.id;
      row.append(el("td", job.filename, "file"));
      row.append(el("td", job.status === "done" ? job.verdict_status : job.status));
      row.append(el("td", job.score === null || job.score === undefined ? "–" : `${pct(job.score)} ${job.label}`));
      row.append(el("td", when(job.created_at)));
      row.addEventListener("click", () => follow(job.id));
      body.append(row);
    }
    if (!list.jobs.length) {
      const row = el("tr");
      const cell = el("td", "no jobs yet", "muted");
      cell.colSpan = 4;
      row.append(cell);
      body.append(row);
    }
  }

  async function deleteJob() {
    if (!state.job || !confirm("Delete this job and its uploaded file?")) return;
    const response = await api("/v1/jobs/" + state.job, { method: "DELETE" });
    if (response.status !== 204) {
      showError(await detail(response));
      return;
    }
    state.job = null;
    $("result").hidden = true;
    history.replaceState(null, "", "#");
    refreshJobs();
  }

  // ---- wiring -----------------------------------------------------------------------------

  function init() {
    const drop = $("drop");
    // keep a file dropped next to the zone from replacing the page
    for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      drop.classList.remove("over");
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) upload(file);
    });
    $("file").addEventListener("change", (e) => {
      const file = e.target.files[0];
      if (file) upload(file);
      e.target.value = "";
    });
    $("auth-form").addEventListener("submit", (e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
      $("auth").hidden = true;
      showError("");
      loadModel();
      refreshJobs();
      if (state.job) follow(state.job);
    });
    $("refresh").addEventListener("click", refreshJobs);
    $("delete").addEventListener("click", deleteJob);
    $("try-example").addEventListener("click", tryExample);
    loadModel();
    refreshJobs();
    const match = location.hash.match(/job=([0-9a-f]{32})/);
    if (match) follow(match[1]);
  }

  init();
})();
