// hwnas dashboard: one vanilla module, no build step. Reads the same /api/v1 routes as any client.
// Every string from the API goes into the page through textContent / createElement, never innerHTML.

const KEY_STORE = "hwnas.apiKey";
const main = document.getElementById("main");

// ------------------------------------------------------------------ small DOM helpers
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const $ = (id) => document.getElementById(id);
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
const GROUPED = new Intl.NumberFormat("en");  // one formatter: toLocaleString builds one per call
function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return Math.abs(v) >= 1e5 ? GROUPED.format(v) : String(v);
  return Number(v.toPrecision(digits)).toString();
}
function fmtTime(t) { return t ? new Date(t).toLocaleString() : "–"; }
function setTitle(text) { $("page-title").textContent = text; document.title = `${text} · hwnas`; }
function section(title, id) {
  const s = el("section", { class: "card", id, "aria-labelledby": `${id}-h` });
  s.append(el("h2", { id: `${id}-h`, text: title }));
  return s;
}
function message(node, text, kind = "error") {
  clear(node).append(el("p", { class: `msg ${kind}`, role: kind === "error" ? "alert" : "status" },
    kind === "error" ? "Error: " : "", text));
}

// ------------------------------------------------------------------ API with the stored key
class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status; this.problem = problem || {};
  }
}
function authHeaders() {
  const key = localStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}
async function request(path, opts = {}) {
  const headers = { Accept: "application/json", ...authHeaders(), ...(opts.headers || {}) };
  const r = await fetch(path, { ...opts, headers });
  if (r.status === 401) showKeyForm();
  if (!r.ok) {
    let problem = null;
    try { problem = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, problem);
  }
  return r;
}
async function api(path, opts) { return (await request(path, opts)).json(); }

async function download(path, fallbackName, button) {
  const status = button && button.nextElementSibling && button.nextElementSibling.classList.contains("dl-status")
    ? button.nextElementSibling : null;
  if (button) button.disabled = true;
  if (status) status.textContent = "preparing…";
  try {
    const r = await request(path, { headers: { Accept: "*/*" } });
    const cd = r.headers.get("Content-Disposition") || "";
    const m = /filename="?([^";]+)"?/.exec(cd);
    const blob = await r.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: m ? m[1] : fallbackName, hidden: true });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    if (status) status.textContent = `saved ${m ? m[1] : fallbackName}`;
  } catch (e) {
    if (status) status.textContent = `failed: ${e.message}`;
  } finally { if (button) button.disabled = false; }
}

// ------------------------------------------------------------------ the key form (shown on a 401)
function showKeyForm() {
  const area = $("key-form-area");
  if ($("key-form")) return;
  const input = el("input", { id: "api-key", name: "api-key", type: "password", autocomplete: "off",
    required: true, "aria-describedby": "api-key-help" });
  const form = el("form", { id: "key-form", class: "card key-form" },
    el("h2", { text: "API key needed" }),
    el("p", { id: "api-key-help", role: "alert",
      text: "This server requires an API key (create one with `hwnas keys create --name NAME`)." }),
    el("label", { for: "api-key", text: "API key" }), input,
    el("button", { type: "submit", id: "api-key-save", text: "Use this key" }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    localStorage.setItem(KEY_STORE, input.value.trim());
    location.reload();
  });
  area.append(form);
  input.focus();
}
function authStatus() {
  const s = $("auth-status");
  clear(s);
  if (localStorage.getItem(KEY_STORE)) {
    s.append("key stored ", el("button", { type: "button", id: "forget-key", class: "link", text: "forget key",
      onclick: () => { localStorage.removeItem(KEY_STORE); location.reload(); } }));
  }
}

// ------------------------------------------------------------------ plotting
const SYMBOL = { front: "star", feasible: "circle", infeasible: "x" };
const PLOT_CONFIG = { responsive: true, displaylogo: false };
let Plotly2 = null;  // the page's bundle (job page: gl2d; others: basic), set once it has loaded
function plot(div, traces, layout, P = Plotly2) {
  if (!P) { message(div, "plotly.js did not load"); return Promise.resolve(); }
  return P.react(div, traces, { margin: { t: 30, r: 20, b: 50, l: 60 },
    font: { family: "system-ui, sans-serif" }, legend: { orientation: "h", y: -0.2 }, ...layout }, PLOT_CONFIG);
}
function plotlyReady() {
  return new Promise((resolve) => {
    const done = () => { Plotly2 = Plotly2 || window.Plotly || null; resolve(Plotly2); };
    if (Plotly2 || window.Plotly) return done();
    const s = $("plotly-js");
    if (!s) return resolve(null);
    s.addEventListener("load", done); s.addEventListener("error", done);
    window.addEventListener("load", done);
  });
}
// scatter3d is not in the job page's bundle: plotly.js's gl3d bundle is fetched once, when a job has a 3-D
// view, as a second instance (each plot keeps the instance that drew it; window.Plotly is not relied on)
let plotly3d = null;
function plotly3dReady() {
  if (!plotly3d) plotly3d = plotlyReady().then((P2) => new Promise((resolve) => {
    const url = document.body.dataset.plotly3d;
    const own = $("plotly-js");
    if (!url || (own && new URL(own.src, location.href).pathname === url)) return resolve(P2);  // full bundle
    const s = el("script", { src: url, async: true });
    s.addEventListener("load", () => resolve(window.Plotly !== P2 ? window.Plotly : null));
    s.addEventListener("error", () => resolve(null));
    document.head.append(s);
  }));
  return plotly3d;
}

// ------------------------------------------------------------------ jobs page
// the API's field paths -> input ids; anything else goes to #form-general-error
function fieldInput(path) {
  if (!path) return null;
  const p = String(path).replace(/^body\./, "");
  const direct = { space: "f-space", "budget.trials": "f-budget-trials", "budget.seconds": "f-budget-seconds",
    budget: "f-budget-trials", strategy: "f-strategy", "strategy.name": "f-strategy", workers: "f-workers",
    seed: "f-seed", objectives: "objectives-rows", constraints: "constraints-rows", devices: "objectives-rows",
    latency_table: "f-latency-table" };
  if (direct[p]) return direct[p];
  let m = /^objectives\[(\d+)\](?:\.(metric|direction))?/.exec(p);
  if (m) return `f-objective-${m[1]}-${m[2] || "metric"}`;
  m = /^constraints\[(\d+)\](?:\.(metric|max|min))?/.exec(p);
  if (m) return `f-constraint-${m[1]}-${m[2] === "min" || m[2] === "max" ? "bound" : (m[2] || "metric")}`;
  if (p.startsWith("space")) return "f-space";
  if (p.startsWith("strategy")) return "f-strategy";
  return null;
}
function fieldError(id) { return $(`${id}-error`); }
function errorSlot(id) { return el("span", { id: `${id}-error`, class: "field-error", role: "alert" }); }
function labelled(id, label, input, hint) {
  input.id = id; if (!input.name) input.name = id;
  input.setAttribute("aria-describedby", `${id}-error`);
  return el("div", { class: "field" }, el("label", { for: id, text: label }), input,
    hint ? el("small", { class: "hint", text: hint }) : null, errorSlot(id));
}

async function jobsPage() {
  setTitle("Jobs");
  clear(main).append(el("h1", { id: "page-title", text: "Jobs" }));
  const list = section("Your jobs", "jobs");
  const form = section("Submit a search", "submit");
  main.append(list, form);
  const tableWrap = el("div", { id: "jobs-table-wrap", class: "scroll" });
  list.append(el("p", {}, el("button", { type: "button", id: "jobs-refresh", text: "Refresh",
    onclick: () => loadJobs(tableWrap) })), tableWrap);
  await loadJobs(tableWrap);
  buildSubmitForm(form);
  setInterval(() => { if (document.visibilityState === "visible") loadJobs(tableWrap); }, 5000);
}

async function loadJobs(wrap) {
  let page;
  try { page = await api("/api/v1/jobs?limit=100"); } catch (e) { message(wrap, e.message); return; }
  const table = el("table", { id: "jobs-table", "data-count": page.count },
    el("caption", { text: `${page.count} job${page.count === 1 ? "" : "s"}` }),
    el("thead", {}, el("tr", {}, ["name", "status", "progress", "best", "front", "created", "finished"]
      .map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const j of page.data) {
    const frac = j.progress.fraction ?? (j.status === "succeeded" ? 1 : 0);
    const best = Object.entries(j.best || {}).map(([k, v]) => `${k}: ${fmt(v)}`).join("; ");
    body.append(el("tr", { class: `job status-${j.status}`, "data-job-id": j.id },
      el("td", {}, el("a", { href: `/jobs/${encodeURIComponent(j.id)}`, class: "job-link", text: j.name || j.id })),
      el("td", {}, el("span", { class: `badge ${j.status}`, text: j.status })),
      el("td", {}, el("progress", { max: 1, value: frac, "aria-label": `progress of ${j.name}` }),
        ` ${j.progress.done}${j.progress.budget_trials ? "/" + j.progress.budget_trials : ""}`),
      el("td", { text: best || "–" }), el("td", { text: j.front_size }),
      el("td", { text: fmtTime(j.created) }), el("td", { text: fmtTime(j.finished) })));
  }
  if (!page.data.length) body.append(el("tr", {}, el("td", { colspan: 7, text: "No jobs yet: submit one below." })));
  table.append(body);
  clear(wrap).append(table);
}

function objectiveRow(rows, metrics, i, value = {}) {
  const metric = el("select", { id: `f-objective-${i}-metric`, name: `objectives[${i}].metric`,
    "aria-describedby": `f-objective-${i}-metric-error` }, metrics.map((m) => el("option", { value: m, text: m })));
  if (value.metric) metric.value = value.metric;
  const dir = el("select", { id: `f-objective-${i}-direction`, name: `objectives[${i}].direction`,
    "aria-describedby": `f-objective-${i}-direction-error` },
  ["maximize", "minimize"].map((d) => el("option", { value: d, text: d })));
  dir.value = value.direction || "minimize";
  const row = el("div", { class: "row objective", "data-index": i },
    el("label", { for: metric.id, text: `objective ${i + 1}` }), metric,
    el("label", { for: dir.id, class: "visually-hidden", text: `direction of objective ${i + 1}` }), dir,
    el("button", { type: "button", class: "remove", "aria-label": `remove objective ${i + 1}`, text: "✕",
      onclick: () => { row.remove(); } }),
    errorSlot(`f-objective-${i}-metric`), errorSlot(`f-objective-${i}-direction`));
  rows.append(row);
}
function constraintRow(rows, metrics, i) {
  const metric = el("select", { id: `f-constraint-${i}-metric`, name: `constraints[${i}].metric`,
    "aria-describedby": `f-constraint-${i}-metric-error` }, metrics.map((m) => el("option", { value: m, text: m })));
  metric.value = "params";
  const kind = el("select", { id: `f-constraint-${i}-kind`, name: `constraints[${i}].kind` },
    el("option", { value: "max", text: "≤ max" }), el("option", { value: "min", text: "≥ min" }));
  const bound = el("input", { id: `f-constraint-${i}-bound`, name: `constraints[${i}].bound`, type: "number",
    step: "any", required: true, "aria-describedby": `f-constraint-${i}-bound-error` });
  const row = el("div", { class: "row constraint", "data-index": i },
    el("label", { for: metric.id, text: `constraint ${i + 1}` }), metric,
    el("label", { for: kind.id, class: "visually-hidden", text: "bound kind" }), kind,
    el("label", { for: bound.id, class: "visually-hidden", text: "bound" }), bound,
    el("button", { type: "button", class: "remove", "aria-label": `remove constraint ${i + 1}`, text: "✕",
      onclick: () => row.remove() }),
    errorSlot(`f-constraint-${i}-metric`), errorSlot(`f-constraint-${i}-bound`));
  rows.append(row);
}

async function buildSubmitForm(card) {
  let spaces = [], devices = [], known = { data: [], predictors: [] }, strategies = [];
  try {
    [spaces, devices, known, strategies] = await Promise.all([api("/api/v1/spaces"), api("/api/v1/devices"),
      api("/api/v1/proxies"), api("/api/v1/strategies")]);
  } catch (e) { message(card, e.message); return; }
  // every proxy and fitted predictor the server knows (the counts are offered as plain params / macs)
  const metrics = ["proxy:default", "params", "macs", "activations", ...devices.map((d) => `latency:${d.id}`),
    ...known.data.filter((p) => !["params", "macs"].includes(p.name)).map((p) => `proxy:${p.name}`),
    ...(known.predictors || []).map((p) => `predictor:${p.name}`)];
  const form = el("form", { id: "submit-form", novalidate: true });
  const spaceKind = el("fieldset", { class: "row" }, el("legend", { text: "Search space" }),
    el("label", {}, el("input", { type: "radio", name: "space-kind", id: "f-space-kind-builtin", value: "builtin",
      checked: true }), " built-in"),
    el("label", {}, el("input", { type: "radio", name: "space-kind", id: "f-space-kind-spec", value: "spec" }),
      " pasted spec (JSON)"));
  const spaceSelect = el("select", {}, spaces.map((s) => el("option", { value: s.name,
    text: `${s.name} — ${s.description}` })));
  const spec = el("textarea", { rows: 6, placeholder: '{"name": "my-space", ...}' });
  const specField = labelled("f-space-spec", "Space spec (JSON)", spec);
  const objRows = el("div", { id: "objectives-rows" });
  const conRows = el("div", { id: "constraints-rows" });
  let nObj = 0, nCon = 0;
  objectiveRow(objRows, metrics, nObj++, { metric: "proxy:default", direction: "maximize" });
  objectiveRow(objRows, metrics, nObj++, { metric: devices.length ? `latency:${devices[0].id}` : "params",
    direction: "minimize" });
  // the server's strategies (GET /api/v1/strategies), its default (tpe) first
  const strategy = el("select", {}, [...strategies].sort((a, b) => (b.name === "tpe") - (a.name === "tpe"))
    .map((s) => el("option", { value: s.name, text: s.name, title: s.description })));
  const general = el("div", { id: "form-general-error", class: "field-error general", role: "alert" });
  const result = el("div", { id: "form-result", "aria-live": "polite" });
  form.append(
    labelled("f-name", "Name (optional)", el("input", { type: "text", maxlength: 200 })),
    spaceKind, labelled("f-space", "Built-in space", spaceSelect), specField,
    el("fieldset", {}, el("legend", { text: "Objectives" }), objRows, errorSlot("objectives-rows"),
      el("button", { type: "button", id: "add-objective", text: "+ objective",
        onclick: () => objectiveRow(objRows, metrics, nObj++) })),
    el("fieldset", {}, el("legend", { text: "Constraints" }), conRows, errorSlot("constraints-rows"),
      el("button", { type: "button", id: "add-constraint", text: "+ constraint",
        onclick: () => constraintRow(conRows, metrics, nCon++) })),
    el("fieldset", { class: "grid2" }, el("legend", { text: "Budget and search" }),
      labelled("f-budget-trials", "Trials", el("input", { type: "number", value: 40 })),
      labelled("f-budget-seconds", "Seconds (optional)", el("input", { type: "number", step: "any" })),
      labelled("f-strategy", "Strategy", strategy),
      labelled("f-workers", "Workers", el("input", { type: "number", value: 1 })),
      labelled("f-seed", "Seed", el("input", { type: "number", value: 0 })),
      labelled("f-latency-table", "Latency table", el("select", {}, [
        ["auto", "auto: this host's (built on first use, a minute or two)"],
        ["shipped", "shipped: hwnas' own (flagged if measured on another host)"],
        ["host", "host: this host's, or fail"]].map(([v, t]) => el("option", { value: v, text: t }))))),
    general,
    el("button", { type: "submit", id: "submit-job", text: "Submit job" }), result);
  const syncKind = () => {
    const builtin = $("f-space-kind-builtin").checked;
    spaceSelect.closest(".field").hidden = !builtin;
    specField.hidden = builtin;
  };
  card.append(form);
  form.querySelectorAll('input[name="space-kind"]').forEach((r) => r.addEventListener("change", syncKind));
  syncKind();

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    form.querySelectorAll(".field-error").forEach((n) => { n.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    clear(result);
    const body = {};
    const name = $("f-name").value.trim();
    if (name) body.name = name;
    if ($("f-space-kind-builtin").checked) body.space = spaceSelect.value;
    else {
      try { body.space = JSON.parse(spec.value); } catch (e) {
        $("f-space-spec-error").textContent = `not valid JSON: ${e.message}`; return;
      }
    }
    body.objectives = [...objRows.querySelectorAll(".objective")].map((r) => ({
      metric: r.querySelector('select[name$=".metric"]').value,
      direction: r.querySelector('select[name$=".direction"]').value }));
    body.constraints = [...conRows.querySelectorAll(".constraint")].map((r) => {
      const bound = r.querySelector('input[name$=".bound"]').value;
      return { metric: r.querySelector('select[name$=".metric"]').value,
        [r.querySelector('select[name$=".kind"]').value]: bound === "" ? null : Number(bound) };
    });
    const num = (id) => ($(id).value === "" ? undefined : Number($(id).value));
    body.budget = {};
    if (num("f-budget-trials") !== undefined) body.budget.trials = num("f-budget-trials");
    if (num("f-budget-seconds") !== undefined) body.budget.seconds = num("f-budget-seconds");
    body.strategy = { name: strategy.value };
    if (num("f-workers") !== undefined) body.workers = num("f-workers");
    if (num("f-seed") !== undefined) body.seed = num("f-seed");
    if ($("f-latency-table").value !== "auto") body.latency_table = $("f-latency-table").value;
    $("submit-job").disabled = true;
    try {
      const job = await api("/api/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body) });
      clear(result).append(el("p", { class: "msg ok", role: "status" }, "Submitted ",
        el("a", { href: `/jobs/${encodeURIComponent(job.id)}`, id: "submitted-job-link", text: job.name || job.id }),
        ` (${job.status}).`));
      loadJobs($("jobs-table-wrap"));
    } catch (e) {
      showFormErrors(e, body);
    } finally { $("submit-job").disabled = false; }
  });
}

function showFormErrors(e, body) {
  const general = $("form-general-error");
  const rest = [];
  const errs = (e.problem && e.problem.errors) || [];
  for (const err of errs) {
    let id = fieldInput(err.field);
    if (id === "f-space" && body && typeof body.space === "object") id = "f-space-spec";
    const slot = id && fieldError(id);
    if (slot) {
      const text = String(err.field).startsWith("space.") ? `${err.field}: ${err.message}` : err.message;
      slot.textContent = slot.textContent ? `${slot.textContent} ${text}` : text;
      const input = $(id); if (input) input.setAttribute("aria-invalid", "true");
    } else rest.push(err.field ? `${err.field}: ${err.message}` : err.message);
  }
  general.textContent = [e.message, ...rest].filter(Boolean).join(" — ");
}

// ------------------------------------------------------------------ job page
async function jobPage(jobId) {
  clear(main).append(el("h1", { id: "page-title", text: "Job" }));
  const enc = encodeURIComponent(jobId);
  // the plots' data: the plot needs 6 significant digits and no net ids (a click asks for the one it needs);
  // the first fetch starts with the job's, not after it
  const plotData = () => Promise.all([api(`/api/v1/jobs/${enc}/points?digits=6&arch_ids=false`),
    api(`/api/v1/jobs/${enc}/pareto`), api(`/api/v1/jobs/${enc}/hypervolume`)]);
  let prefetched = plotData();
  prefetched.catch(() => {});  // its error is shown by loadPlots, or by the job's own 404 first
  let job;
  try { job = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}`); } catch (e) { message(main, e.message); return; }
  setTitle(`Job ${job.name || job.id}`);
  const state = { job, points: null, pareto: null, done: -1, timer: null };
  const summary = section("Status", "job-summary");
  const pf = section("Pareto front", "front");
  const hv = section("Hypervolume", "hv");
  const tr = section("Trials", "trials");
  const cfg = section("Spec", "spec");
  // a latency table of another host: its latencies are that host's; the banner says how to build this host's
  const banner = el("div", { id: "latency-warning", class: "banner", role: "alert", hidden: true });
  main.append(banner, summary, pf, hv, tr, cfg);

  // status + cancel
  const statusBox = el("div", { id: "job-status", "aria-live": "polite" });
  const cancel = el("button", { type: "button", id: "cancel-job", text: "Cancel job" });
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try { state.job = { ...state.job, ...(await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`,
      { method: "POST" })) }; renderStatus(); } catch (e) { message(statusBox, e.message); cancel.disabled = false; }
  });
  summary.append(statusBox, cancel);
  const finished = () => ["succeeded", "failed", "cancelled"].includes(state.job.status);
  function renderStatus() {
    const j = state.job;
    const frac = j.progress.fraction ?? (j.status === "succeeded" ? 1 : 0);
    clear(statusBox).append(el("dl", { class: "kv" },
      el("dt", { text: "status" }), el("dd", {}, el("span", { class: `badge ${j.status}`, id: "job-status-value",
        text: j.status })),
      el("dt", { text: "progress" }), el("dd", {}, el("progress", { max: 1, value: frac, "aria-label": "progress" }),
        el("span", { id: "job-done", "data-done": j.progress.done,
          text: ` ${j.progress.done}${j.progress.budget_trials ? "/" + j.progress.budget_trials : ""} trials, ` +
            `${fmt(j.progress.elapsed, 3)} s` })),
      el("dt", { text: "space" }), el("dd", { text: j.space }),
      el("dt", { text: "best" }), el("dd", { text: Object.entries(j.best || {}).map(([k, v]) => `${k}: ${fmt(v)}`)
        .join("; ") || "–" }),
      el("dt", { text: "front size" }), el("dd", { text: j.front_size }),
      el("dt", { text: "hypervolume" }), el("dd", { text: fmt(j.hypervolume) }),
      el("dt", { text: "created" }), el("dd", { text: fmtTime(j.created) }),
      el("dt", { text: "finished" }), el("dd", { text: fmtTime(j.finished) }),
      el("dt", { text: "attempts" }), el("dd", { text: j.attempts })));
    if (j.error) statusBox.append(el("p", { id: "job-error", class: "msg error", role: "alert" }, "Error: ", j.error));
    if (j.notes && j.notes.length) statusBox.append(el("ul", { id: "job-notes" }, j.notes.map((n) => el("li", { text: n }))));
    cancel.disabled = finished() || j.cancel_requested;
    renderBanner();
  }
  // A table measured on another host (foreign), or one the worker could not check (unverified: it cannot run
  // the profile, e.g. a CUDA table on a worker without a GPU): either way the latencies may not be this host's.
  function renderBanner() {
    const tables = state.job.latency_tables || [];
    const foreign = tables.filter((t) => t.foreign);
    const unverified = tables.filter((t) => !t.foreign && t.verdict === "unverified");
    clear(banner).hidden = !foreign.length && !unverified.length;
    banner.dataset.verdict = foreign.length ? "foreign" : unverified.length ? "unverified" : "";
    if (foreign.length) {
      banner.append(el("strong", { text: "⚠ These latencies describe another host, not this one" }),
        el("ul", {}, foreign.map((t) => el("li", { "data-profile": t.profile },
          `${t.metrics.join(", ")}: predicted from table ${t.table}, measured on another host`,
          t.reasons.length ? ` (${t.reasons.join("; ")})` : "", ". Build this host's table: ",
          el("code", { class: "build-command", text: t.build_command || "hwnas lut build" })))),
        el("p", { class: "hint", id: "latency-warning-next", text: bannerNext(foreign) }));
    }
    if (unverified.length) {
      banner.append(el("strong", { text: "These latencies could not be checked against the worker's host" }),
        el("ul", { id: "latency-unverified" }, unverified.map((t) => el("li", { "data-profile": t.profile },
          `${t.metrics.join(", ")}: predicted from table ${t.table}, not checked against the worker's host`,
          t.reasons.length ? ` (${t.reasons.join("; ")})` : "",
          ...(t.build_command
            ? [". Build the worker host's own table: ", el("code", { class: "build-command", text: t.build_command })]
            : [". They are that table's device's figures; measure the device itself with hwnas lut export-kit ",
              "and hwnas lut import if it is not the one the table was measured on."])))));
    }
  }
  // What to do next depends on how the job chose its table (JobLatencyTable.source).
  function bannerNext(foreign) {
    const sources = new Set(foreign.map((t) => t.source));
    if (sources.has("shipped") || sources.has("file"))
      return "This job asked for that table (latency_table: " + [...sources].join(", ") + "). Submit it again " +
        "with latency_table \"auto\": it builds this host's table on first use (about a minute) and predicts from it.";
    if (sources.has("found"))
      return "The worker cannot run this profile itself: build the table on a machine that can " +
        "(hwnas lut export-kit, then hwnas lut import), then run the search again.";
    return "Then run the search again: it predicts from this host's table.";
  }
  renderStatus();

  // spec
  cfg.append(el("pre", { id: "job-config", class: "code", text: JSON.stringify(job.config, null, 2) }));

  // Pareto controls
  const objectives = job.objectives.map((o) => o.metric);
  const xSel = el("select", { id: "front-x" }), ySel = el("select", { id: "front-y" });
  const cSel = el("select", { id: "front-color" });
  const onlyFront = el("input", { type: "checkbox", id: "front-only" });
  pf.append(el("div", { class: "controls" },
    el("label", { for: "front-x", text: "X" }), xSel, el("label", { for: "front-y", text: "Y" }), ySel,
    el("label", { for: "front-color", text: "colour" }), cSel,
    el("label", { for: "front-only" }, onlyFront, " front only")),
  el("p", { class: "hint", text: "★ front (joined by a line for two objectives) · ● feasible · ✕ infeasible. Click a point to open its net." }),
  el("div", { id: "pareto-plot", class: "plot", "data-points": 0, "data-front": 0, role: "img",
    "aria-label": "Pareto front scatter plot" }),
  el("div", { id: "point-message" }),
  ...(objectives.length >= 3 ? [el("h3", { text: "Parallel coordinates (feasible trials; dark red: front)" })] : []),
  el("details", { id: "front-list" }),
  el("div", { id: "parcoords-plot", class: "plot", hidden: objectives.length < 3 }),
  ...(objectives.length >= 3 ? [el("h3", { text: "The first three objectives in 3-D (stars: front)" })] : []),
  el("div", { id: "pareto-3d", class: "plot", hidden: objectives.length < 3, role: "img",
    "aria-label": "3-D scatter of the first three objectives" }));
  const hvPlot = el("div", { id: "hv-plot", class: "plot small" });
  hv.append(hvPlot);

  function fillSelect(sel, names, value, withNone) {
    const keep = sel.value || value;
    clear(sel);
    if (withNone) sel.append(el("option", { value: "", text: "(none)" }));
    for (const n of names) sel.append(el("option", { value: n, text: n }));
    if (names.includes(keep) || (withNone && keep === "")) sel.value = keep;
  }

  function drawFront() {
    const P = state.points; if (!P) return;
    const names = Object.keys(P.metrics);
    const ordered = [...objectives, ...names.filter((n) => !objectives.includes(n))];
    fillSelect(xSel, ordered, objectives[1] || ordered[0]);
    fillSelect(ySel, ordered, objectives[0] || ordered[1]);
    fillSelect(cSel, ordered, objectives[2] || "", true);
    const xm = xSel.value, ym = ySel.value, cm = cSel.value;
    const X = P.metrics[xm] || [], Y = P.metrics[ym] || [], C = cm ? P.metrics[cm] : null;
    const groups = { front: [], feasible: [], infeasible: [] };
    for (let i = 0; i < P.count; i++) {
      if (X[i] === null || Y[i] === null || X[i] === undefined || Y[i] === undefined) continue;
      const g = P.on_front[i] ? "front" : P.feasible[i] ? "feasible" : "infeasible";
      if (onlyFront.checked && g !== "front") continue;
      groups[g].push(i);
    }
    const frontArch = {}, encoding = {};
    for (const p of (state.pareto ? state.pareto.data : [])) { frontArch[p.number] = p.arch_id; encoding[p.number] = p.encoding; }
    const colour = { front: "#c0392b", feasible: "#1f77b4", infeasible: "#999999" };
    const traces = [];
    for (const g of ["infeasible", "feasible", "front"]) {
      const idx = groups[g];
      if (g === "front") idx.sort((a, b) => X[a] - X[b]);
      const marker = { symbol: SYMBOL[g], size: g === "front" ? 12 : g === "infeasible" ? 9 : 7, line: { width: g === "feasible" ? 0 : 1 } };
      if (C && g !== "infeasible") {
        marker.color = idx.map((i) => C[i]); marker.colorscale = "Viridis";
        marker.showscale = g === "feasible"; marker.colorbar = { title: { text: cm } };
      } else marker.color = colour[g];
      // a 2-objective front is a staircase in its own axes; a projected 3+-objective front is not: no line then
      const joined = g === "front" && objectives.length <= 2 && objectives.includes(xm) && objectives.includes(ym);
      const trace = { type: "scattergl", mode: joined ? "lines+markers" : "markers", name: g,
        x: idx.map((i) => X[i]), y: idx.map((i) => Y[i]), customdata: idx.map((i) => P.numbers[i]), marker,
        line: g === "front" ? { color: colour.front, width: 1.5, shape: "linear" } : undefined };
      if (g === "front") {  // a few hundred points: every metric, the net's string form
        trace.text = idx.map((i) => {
          const lines = [`#${P.numbers[i]} ${frontArch[P.numbers[i]] || ""}`];
          for (const m of names) lines.push(`${m}: ${fmt(P.metrics[m][i])}`);
          if (encoding[P.numbers[i]]) lines.push(encoding[P.numbers[i]]);
          return lines.join("<br>");
        });
        trace.hoverinfo = "text";
      } else {  // tens of thousands: plotly formats the hover itself, nothing is built per point up front
        trace.hovertemplate = `#%{customdata}<br>${xm}: %{x:.4~g}<br>${ym}: %{y:.4~g}` +
          (C && g !== "infeasible" ? `<br>${cm}: %{marker.color:.4~g}` : "") + `<extra>${g}</extra>`;
      }
      traces.push(trace);
    }
    const div = $("pareto-plot");
    const shown = groups.front.length + groups.feasible.length + groups.infeasible.length;
    div.dataset.points = String(shown); div.dataset.front = String(groups.front.length);
    div.dataset.total = String(P.count);
    plot(div, traces, { xaxis: { title: { text: xm } }, yaxis: { title: { text: ym } }, height: 480,
      hovermode: "closest" }).then(() => {
      performance.mark("hwnas:plotted");
      if (!div.dataset.bound && div.on) {
        div.dataset.bound = "1";
        div.on("plotly_click", (ev) => { const pt = ev.points && ev.points[0]; if (pt) openTrial(pt.customdata); });
      }
      div.dataset.ready = "1";
    });
    renderFrontList(groups.front, frontArch);
    if (objectives.length >= 3) {
      const feasibleIdx = [...groups.front, ...groups.feasible];
      plot($("parcoords-plot"), [{ type: "parcoords",
        line: { color: feasibleIdx.map((i) => (P.on_front[i] ? 1 : 0)), colorscale: [[0, "#9ecae1"], [1, "#c0392b"]] },
        dimensions: objectives.map((m) => ({ label: m, values: feasibleIdx.map((i) => P.metrics[m][i]) })) }],
      { height: 380, margin: { t: 80, r: 60, b: 30, l: 60 } });
      const [a, b, c] = objectives;
      const trace3 = (g, symbol, size) => ({ type: "scatter3d", mode: "markers", name: g,
        x: groups[g].map((i) => P.metrics[a][i]), y: groups[g].map((i) => P.metrics[b][i]),
        z: groups[g].map((i) => P.metrics[c][i]), customdata: groups[g].map((i) => P.numbers[i]),
        hovertemplate: `#%{customdata}<br>${a}: %{x:.4~g}<br>${b}: %{y:.4~g}<br>${c}: %{z:.4~g}<extra>${g}</extra>`,
        marker: { symbol, size, color: colour[g] } });
      const div3 = $("pareto-3d");
      plotly3dReady().then((P3) => plot(div3, [trace3("feasible", "circle", 3), trace3("front", "diamond", 5)],
        { height: 520, scene: { xaxis: { title: { text: a } }, yaxis: { title: { text: b } },
          zaxis: { title: { text: c } } } }, P3)).then(() => {
        if (!div3.dataset.bound && div3.on) {
          div3.dataset.bound = "1";
          div3.on("plotly_click", (ev) => { const pt = ev.points && ev.points[0]; if (pt) openTrial(pt.customdata); });
        }
        div3.dataset.points = String(groups.feasible.length + groups.front.length);
      });
    }
  }
  // a click gives a trial number; its net's id comes from the front (known) or from the API (one request)
  async function openTrial(number) {
    if (number === undefined || number === null) return;
    const known = state.pareto && state.pareto.data.find((p) => p.number === number);
    let arch = known && known.arch_id;
    if (!arch) {
      try { arch = (await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/trials/${number}`)).arch_id; }
      catch (e) { message($("point-message"), e.message); return; }
    }
    if (arch) location.href = `/architectures/${encodeURIComponent(arch)}?job=${encodeURIComponent(jobId)}`;
    else message($("point-message"), `trial #${number} has no net (it failed before one was built)`);
  }
  // the front as links: what the plot shows, reachable by keyboard and by screen readers
  function renderFrontList(frontIdx, frontArch) {
    const P = state.points, box = $("front-list");
    const names = objectives.filter((m) => P.metrics[m]);
    const rows = frontIdx.map((i) => el("tr", {},
      el("td", {}, el("a", { href: `/architectures/${encodeURIComponent(frontArch[P.numbers[i]] || "")}?job=` +
        encodeURIComponent(jobId), text: `#${P.numbers[i]}` })),
      ...names.map((m) => el("td", { class: "num", text: fmt(P.metrics[m][i]) }))));
    clear(box).append(el("summary", { text: `The front as a table (${frontIdx.length} nets)` }),
      el("table", { id: "front-table" }, el("thead", {}, el("tr", {}, el("th", { text: "trial" }),
        ...names.map((m) => el("th", { text: m })))), el("tbody", {}, rows)));
  }
  [xSel, ySel, cSel, onlyFront].forEach((s) => s.addEventListener("change", drawFront));

  async function loadPlots() {
    const t0 = performance.now();
    try {
      const pending = prefetched || plotData();
      prefetched = null;  // a failed first fetch is not reused: the next refresh asks again
      const [points, pareto, hvData] = await pending;
      state.points = points; state.pareto = pareto;
      performance.mark("hwnas:data");  // the phases the dashboard benchmark reports
      await plotlyReady();
      performance.mark("hwnas:plotly");
      drawFront();
      hvPlot.dataset.points = String(hvData.data.length);
      plot(hvPlot, [{ type: "scatter", mode: "lines", name: "hypervolume", x: hvData.data.map((d) => d.trial),
        y: hvData.data.map((d) => d.hypervolume), line: { shape: "hv" } }],
      { height: 280, xaxis: { title: { text: "trials" } }, yaxis: { title: { text: "hypervolume" } } });
    } catch (e) { message($("pareto-plot"), e.message); }
    state.plotMs = performance.now() - t0;
  }

  // trials table
  const tstate = { sort: "number", order: "asc", cursors: [null], page: 0 };
  const fState = el("select", { id: "filter-state" }, el("option", { value: "", text: "any" }),
    el("option", { value: "COMPLETE", text: "COMPLETE" }), el("option", { value: "FAIL", text: "FAIL" }));
  const fFeas = el("select", { id: "filter-feasible" }, el("option", { value: "", text: "any" }),
    el("option", { value: "true", text: "feasible" }), el("option", { value: "false", text: "infeasible" }));
  const fFront = el("select", { id: "filter-front" }, el("option", { value: "", text: "any" }),
    el("option", { value: "true", text: "on front" }), el("option", { value: "false", text: "not on front" }));
  const prev = el("button", { type: "button", id: "trials-prev", text: "← previous" });
  const next = el("button", { type: "button", id: "trials-next", text: "next →" });
  const pageInfo = el("span", { id: "trials-page-info", "aria-live": "polite" });
  const csv = el("button", { type: "button", id: "trials-csv", text: "Download CSV" });
  const tableWrap = el("div", { class: "scroll", id: "trials-wrap" });
  tr.append(el("div", { class: "controls" },
    el("label", { for: "filter-state", text: "state" }), fState,
    el("label", { for: "filter-feasible", text: "feasible" }), fFeas,
    el("label", { for: "filter-front", text: "front" }), fFront, csv, el("span", { class: "dl-status" })),
  tableWrap, el("div", { class: "controls" }, prev, pageInfo, next));
  function query(extra = {}) {
    const q = new URLSearchParams({ sort: tstate.sort, order: tstate.order, limit: "50", ...extra });
    if (fState.value) q.set("state", fState.value);
    if (fFeas.value) q.set("feasible", fFeas.value);
    if (fFront.value) q.set("on_front", fFront.value);
    return q;
  }
  async function loadTrials() {
    const q = query();
    const cursor = tstate.cursors[tstate.page];
    if (cursor) q.set("cursor", cursor);
    let page;
    try { page = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/trials?${q}`); }
    catch (e) { message(tableWrap, e.message); return; }
    tstate.cursors[tstate.page + 1] = page.next_cursor;
    const cols = ["number", "state", "arch_id", "feasible", "on_front", ...objectives, "seconds"];
    const sortable = new Set(["number", "seconds", ...objectives]);
    const head = el("tr", {}, cols.map((c) => {
      const sorted = tstate.sort === c;
      const th = el("th", { scope: "col", "aria-sort": sorted ? (tstate.order === "asc" ? "ascending" : "descending") : null });
      if (sortable.has(c)) {
        th.append(el("button", { type: "button", class: "sort", "data-sort": c,
          text: `${c}${sorted ? (tstate.order === "asc" ? " ▲" : " ▼") : ""}`,
          onclick: () => {
            tstate.order = sorted && tstate.order === "asc" ? "desc" : "asc";
            tstate.sort = c; tstate.cursors = [null]; tstate.page = 0; loadTrials();
          } }));
      } else th.textContent = c;
      return th;
    }));
    const body = el("tbody");
    for (const t of page.data) {
      body.append(el("tr", { "data-number": t.number, class: t.on_front ? "on-front" : "" },
        el("td", { text: t.number }), el("td", { text: t.state }),
        el("td", {}, t.arch_id ? el("a", { href: `/architectures/${encodeURIComponent(t.arch_id)}?job=${encodeURIComponent(jobId)}`,
          text: t.arch_id }) : "–"),
        el("td", { text: t.feasible ? "yes" : "no" }), el("td", { text: t.on_front ? "★ yes" : "no" }),
        objectives.map((m) => el("td", { class: "num", text: fmt(t.metrics[m]) })),
        el("td", { class: "num", text: fmt(t.seconds, 3) })));
    }
    clear(tableWrap).append(el("table", { id: "trials-table", "data-count": page.count },
      el("caption", { text: `${page.count} trials, sorted by ${tstate.sort} ${tstate.order}` }),
      el("thead", {}, head), body));
    pageInfo.textContent = ` page ${tstate.page + 1} of ${Math.max(1, Math.ceil(page.count / 50))} `;
    prev.disabled = tstate.page === 0; next.disabled = !page.next_cursor;
  }
  prev.addEventListener("click", () => { if (tstate.page > 0) { tstate.page--; loadTrials(); } });
  next.addEventListener("click", () => { if (tstate.cursors[tstate.page + 1]) { tstate.page++; loadTrials(); } });
  [fState, fFeas, fFront].forEach((s) => s.addEventListener("change", () => {
    tstate.cursors = [null]; tstate.page = 0; loadTrials();
  }));
  csv.addEventListener("click", () => {
    const q = query({ format: "csv" }); q.delete("limit");
    download(`/api/v1/jobs/${encodeURIComponent(jobId)}/trials?${q}`, `${jobId}-trials.csv`, csv);
  });

  // live updates: throttle re-fetches to one per 3 s
  let lastFetch = 0, pending = null;
  function onJob(j) {
    const changed = j.progress.done !== state.job.progress.done;
    state.job = { ...state.job, ...j };
    renderStatus();
    if (!changed && !finished()) return;
    // a big job's plots take a while to fetch and draw: refresh at most every 3 s, and at most a fifth of the time
    const wait = Math.max(0, Math.max(3000, 5 * (state.plotMs || 0)) - (Date.now() - lastFetch));
    if (pending) return;
    pending = setTimeout(() => { pending = null; lastFetch = Date.now(); loadPlots(); loadTrials(); }, wait);
  }
  lastFetch = Date.now();
  await Promise.all([loadPlots(), loadTrials()]);
  if (!finished()) follow(jobId, onJob, finished);
}

// fetch() + ReadableStream SSE parser (EventSource cannot send Authorization); polling as fallback
async function follow(jobId, onJob, finished) {
  const url = `/api/v1/jobs/${encodeURIComponent(jobId)}/events`;
  try {
    const r = await fetch(url, { headers: { Accept: "text/event-stream", ...authHeaders() } });
    if (!r.ok || !r.body) throw new Error(`events: HTTP ${r.status}`);
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
        let event = "message"; const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const i = line.indexOf(":");
          const f = i < 0 ? line : line.slice(0, i);
          const v = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (f === "event") event = v; else if (f === "data") data.push(v);
        }
        if (event === "job" && data.length) onJob(JSON.parse(data.join("\n")));
      }
    }
    if (finished()) return;
  } catch { /* fall through to polling */ }
  const poll = async () => {
    try { onJob(await api(`/api/v1/jobs/${encodeURIComponent(jobId)}`)); } catch { /* retry */ }
    if (!finished()) setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

// ------------------------------------------------------------------ architecture page
const DOWNLOADS = ["json", "onnx", "onnx-int8", "pytorch", "card"];
function blockLabel(b) {
  const parts = [b.type, `k${b.k}`];
  if (b.mid && b.cin) parts.push(`t${fmt(b.mid / b.cin, 3)}`);
  if (b.se) parts.push(`SE${b.se}`);
  parts.push(`s${b.stride}`, `c${b.cout}`);
  return parts.join(" ");
}
function blockDiagram(arch, id) {
  const blocks = [["stem", arch.stem], ...arch.blocks.map((b, i) => [`block ${i + 1}`, b])];
  let res = arch.resolution;
  const wrap = el("ol", { class: "blocks", id, "aria-label": "block diagram" });
  wrap.append(el("li", { class: "block input" }, el("strong", { text: "input" }),
    el("span", { text: `${arch.in_channels}×${arch.resolution}×${arch.resolution}` })));
  for (const [name, b] of blocks) {
    if (!b) continue;
    res = Math.ceil(res / (b.stride || 1));
    wrap.append(el("li", { class: `block type-${b.type}${b.residual ? " residual" : ""}${b.stride > 1 ? " down" : ""}` },
      el("strong", { text: name }), el("span", { class: "btype", text: b.type }),
      el("span", { text: `kernel ${b.k}` }),
      b.mid && b.cin ? el("span", { text: `expansion t=${fmt(b.mid / b.cin, 3)}` }) : null,
      el("span", { text: b.se ? `SE ${b.se}` : "no SE" }),
      el("span", { text: `out ${b.cout} ch` }), el("span", { text: `${res}×${res}${b.stride > 1 ? " ↓" : ""}` }),
      b.residual ? el("span", { text: "+ skip" }) : null, el("span", { class: "act", text: b.act })));
  }
  if (arch.head) {
    wrap.append(el("li", { class: "block head" }, el("strong", { text: "head" }),
      el("span", { text: `conv ${arch.head.conv}` }), arch.head.hidden ? el("span", { text: `hidden ${arch.head.hidden}` }) : null,
      el("span", { text: `${arch.head.classes} classes` })));
  }
  return wrap;
}
function costTable(cost) {
  return el("dl", { class: "kv cost" }, el("dt", { text: "params" }), el("dd", { text: fmt(cost.params) }),
    el("dt", { text: "MACs" }), el("dd", { text: `${fmt(cost.macs / 1e6, 4)} M` }),
    el("dt", { text: "activations" }), el("dd", { text: fmt(cost.activations) }));
}
function latencyTable(a, id) {
  const t = el("table", { id, class: "latencies" }, el("caption", { text: "latency per device" }),
    el("thead", {}, el("tr", {}, ["device", "latency ms", "provenance", "table", "host"].map((h) =>
      el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const l of a.latencies) {
    body.append(el("tr", { "data-profile": l.profile },
      el("td", { text: l.profile }), el("td", { class: "num", text: fmt(l.latency_ms) }),
      el("td", { text: l.measured ? "measured (every layer)" : "estimated (some layers predicted)" }),
      el("td", { text: l.table }),
      el("td", {}, l.host, l.foreign_host ? el("strong", { class: "warn", role: "note",
        text: " ⚠ foreign host: measured on another machine" }) : null,
        l.foreign_host && l.host_note ? el("span", { class: "hint host-note", text: ` ${l.host_note}` }) : null)));
  }
  for (const [p, err] of Object.entries(a.latency_errors || {})) {
    body.append(el("tr", {}, el("td", { text: p }), el("td", { colspan: 4, class: "msg error", text: err })));
  }
  t.append(body);
  return el("div", { class: "scroll" }, t);
}

async function architecturePage(archId) {
  clear(main).append(el("h1", { id: "page-title", text: "Architecture" }));
  const jobId = new URLSearchParams(location.search).get("job");
  let a;
  try { a = await api(`/api/v1/architectures/${encodeURIComponent(archId)}`); } catch (e) { message(main, e.message); return; }
  setTitle(`Architecture ${a.arch_id}`);
  const info = section("Net", "arch-info");
  info.append(el("p", {}, "string form: ", el("code", { id: "arch-encoding", text: a.encoding })),
    costTable(a.cost),
    a.jobs.length ? el("p", {}, "evaluated in: ", a.jobs.map((j) => [el("a", { href: `/jobs/${encodeURIComponent(j)}`,
      text: j }), " "])) : null);
  const dl = section("Downloads", "downloads");
  const q = jobId ? `&job=${encodeURIComponent(jobId)}` : "";
  dl.append(el("div", { class: "controls" }, DOWNLOADS.map((f) => {
    const b = el("button", { type: "button", id: `download-${f}`, "data-format": f, text: `Download ${f}` });
    b.addEventListener("click", () => download(`/api/v1/architectures/${encodeURIComponent(archId)}/download?format=${f}${q}`,
      `${archId}.${f}`, b));
    return [b, el("span", { class: "dl-status", "aria-live": "polite" })];
  })));
  const lat = section("Latency", "latency");
  lat.append(latencyTable(a, "latency-table"));
  const diagram = section("Block diagram", "diagram");
  diagram.append(blockDiagram(a.architecture, "block-diagram"));
  const card = section("Model card", "card");
  const cardPre = el("pre", { id: "model-card", class: "code", text: "loading…" });
  card.append(cardPre);
  main.append(info, dl, lat, diagram, card);

  if (a.latencies.length) {
    const sel = el("select", { id: "breakdown-device" }, a.latencies.map((l) => el("option", { value: l.profile, text: l.profile })));
    const div = el("div", { id: "breakdown-plot", class: "plot", role: "img",
      "aria-label": "share of latency vs share of MACs per layer" });
    lat.append(el("div", { class: "controls" }, el("label", { for: "breakdown-device", text: "per-layer breakdown for" }), sel),
      el("p", { class: "hint", text: "Each layer's share of the net's latency (solid) next to its share of MACs (hatched): " +
        "where they part ways, FLOPs mislead." }), div);
    const draw = () => {
      const l = a.latencies.find((x) => x.profile === sel.value);
      const totL = l.layers.reduce((s, x) => s + x.latency_ms, 0) || 1;
      const totM = l.layers.reduce((s, x) => s + x.macs, 0) || 1;
      const names = l.layers.map((x, i) => `${i}: ${x.name}`);
      plot(div, [
        { type: "bar", name: "latency share %", x: names, y: l.layers.map((x) => (100 * x.latency_ms) / totL),
          hovertext: l.layers.map((x) => `${fmt(x.latency_ms)} ms${x.measured ? " (measured)" : " (estimated)"}`), textposition: "none", marker: { color: "#c0392b" } },
        { type: "bar", name: "MACs share %", x: names, y: l.layers.map((x) => (100 * x.macs) / totM),
          hovertext: l.layers.map((x) => `${fmt(x.macs / 1e6)} M MACs`), textposition: "none", marker: { color: "#1f77b4", pattern: { shape: "/" } } },
      ], { barmode: "group", height: 380, yaxis: { title: { text: "% of net" } }, xaxis: { tickangle: -45, automargin: true } });
    };
    sel.addEventListener("change", draw);
    plotlyReady().then(draw);
  }
  try {
    const r = await request(`/api/v1/architectures/${encodeURIComponent(archId)}/download?format=card${q}`,
      { headers: { Accept: "*/*" } });
    cardPre.textContent = await r.text();
  } catch (e) { cardPre.textContent = `model card unavailable: ${e.message}`; }
}

// ------------------------------------------------------------------ compare page
async function comparePage() {
  clear(main).append(el("h1", { id: "page-title", text: "Compare" }));
  setTitle("Compare");
  const params = new URLSearchParams(location.search);
  const form = el("form", { id: "compare-form", class: "controls card", method: "get", action: "/compare" },
    el("label", { for: "compare-a", text: "net A (arch_id)" }), el("input", { id: "compare-a", name: "a", value: params.get("a") || "" }),
    el("label", { for: "compare-b", text: "net B (arch_id)" }), el("input", { id: "compare-b", name: "b", value: params.get("b") || "" }),
    el("button", { type: "submit", text: "Compare" }));
  const grid = el("div", { class: "compare", id: "compare-grid" });
  main.append(form, grid);
  const ids = [params.get("a"), params.get("b")].filter(Boolean);
  for (const [i, id] of ids.entries()) {
    const col = section(`Net ${"AB"[i]}`, `compare-${"ab"[i]}`);
    grid.append(col);
    try {
      const a = await api(`/api/v1/architectures/${encodeURIComponent(id)}`);
      col.append(el("p", {}, el("a", { href: `/architectures/${encodeURIComponent(a.arch_id)}`, text: a.arch_id })),
        el("p", {}, el("code", { text: a.encoding })), costTable(a.cost), latencyTable(a, `compare-latency-${"ab"[i]}`),
        blockDiagram(a.architecture, `compare-blocks-${"ab"[i]}`));
    } catch (e) { message(col, e.message); }
  }
}

// ------------------------------------------------------------------ devices page
async function devicesPage() {
  clear(main).append(el("h1", { id: "page-title", text: "Devices" }));
  setTitle("Devices");
  let devices;
  try { devices = await api("/api/v1/devices"); } catch (e) { message(main, e.message); return; }
  const list = section("Profiles and tables", "devices");
  const t = el("table", { id: "devices-table" }, el("thead", {}, el("tr", {}, ["profile", "runtime", "available", "table",
    "source", "measured on", "layers", "calibration", "CV MAPE %"].map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  const v = el("table", { id: "validation-table" }, el("thead", {}, el("tr", {}, ["table", "space", "nets",
    "within ±10 %", "noise within ±10 %", "MAPE %", "noise MAPE %", "Spearman", "noise Spearman"].map((h) =>
    el("th", { scope: "col", text: h })))));
  const vbody = el("tbody");
  const choices = [];
  for (const d of devices) {
    const tables = d.tables.length ? d.tables : [null];
    for (const tb of tables) {
      const cv = tb && tb.calibration.cv_mape !== null && tb.calibration.cv_mape !== undefined
        ? 100 * tb.calibration.cv_mape : null;
      const host = tb ? [tb.host.cpu, tb.host.cores ? `${tb.host.cores} cores` : null, tb.host.date]
        .filter(Boolean).join(", ") : "";
      body.append(el("tr", { "data-profile": d.id },
        el("td", { text: d.id }), el("td", { text: `${d.runtime} ${d.provider} ${d.precision} t${d.threads} b${d.batch}` }),
        el("td", { text: d.available ? "yes" : "no" }), el("td", { text: tb ? tb.name : "no table" }),
        el("td", { text: tb ? tb.source : "" }),
        el("td", {}, host, tb && tb.host_check && tb.host_check.verdict === "foreign"
          ? el("strong", { class: "warn host-check", role: "note", text: ` ⚠ ${tb.host_check.note || "measured on another host"}` })
          : null),
        el("td", { class: "num", text: tb ? tb.layers.toLocaleString("en") : "" }),
        el("td", { text: tb ? tb.calibration.model : "" }), el("td", { class: "num", text: fmt(cv) })));
      if (!tb) continue;
      for (const r of tb.validation) {
        choices.push([d.id, r.space]);
        vbody.append(el("tr", { "data-profile": d.id, "data-space": r.space },
          el("td", { text: tb.name }), el("td", { text: r.space }), el("td", { class: "num", text: r.samples }),
          ...[r.predicted.within_10_pct, r.noise.within_10_pct, r.predicted.mape_pct, r.noise.mape_pct,
            r.predicted.spearman, r.noise.spearman].map((x) => el("td", { class: "num", text: fmt(x) }))));
      }
    }
  }
  t.append(body);
  v.append(vbody);
  list.append(el("div", { class: "scroll" }, t),
    el("h3", { text: "How well each table predicted nets it was not calibrated on (noise: the same nets measured twice)" }),
    el("div", { class: "scroll" }, v));
  const val = section("Predicted vs measured", "validation");
  const sel = el("select", { id: "validation-choice" }, choices.map(([p, s]) => el("option", { value: `${p}|${s}`, text: `${p} on ${s}` })));
  const div = el("div", { id: "validation-plot", class: "plot", role: "img", "aria-label": "predicted vs measured latency" });
  const info = el("p", { id: "validation-info", "aria-live": "polite" });
  val.append(choices.length ? el("div", { class: "controls" }, el("label", { for: "validation-choice", text: "table and space" }), sel)
    : el("p", { text: "No validation reports (run `hwnas lut validate`)." }), info, div);
  main.append(list, val);
  const draw = async () => {
    if (!sel.value) return;
    const [p, s] = sel.value.split("|");
    try {
      const r = await api(`/api/v1/devices/${encodeURIComponent(p)}/validation/${encodeURIComponent(s)}`);
      const x = r.nets.map((n) => n.measured1_ms), y = r.nets.map((n) => n.predicted_ms);
      const all = [...x, ...y].filter((v) => v !== null && v !== undefined);
      const lo = Math.min(...all), hi = Math.max(...all);
      info.textContent = `${r.samples} nets; MAPE ${fmt(r.predicted.mape_pct)} %, Spearman ${fmt(r.predicted.spearman)}; ` +
        `a second measurement scores MAPE ${fmt(r.noise.mape_pct)} %.`;
      await plotlyReady();
      plot(div, [
        { type: "scatter", mode: "markers", name: "nets", x, y, text: r.nets.map((n) => n.arch_id),
          marker: { symbol: r.nets.map((n) => (n.estimated ? "x" : "circle")), size: 8 } },
        { type: "scatter", mode: "lines", name: "y = x", x: [lo, hi], y: [lo, hi], line: { dash: "dash", color: "#555" } },
      ], { height: 460, xaxis: { title: { text: "measured ms" } }, yaxis: { title: { text: "predicted ms" } } });
    } catch (e) { message(div, e.message); }
  };
  sel.addEventListener("change", draw);
  draw();
}

// ------------------------------------------------------------------ router
async function start() {
  authStatus();
  const page = document.body.dataset.page;
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (page === "jobs") await jobsPage();
    else if (page === "job") await jobPage(parts[1]);
    else if (page === "architecture") await architecturePage(parts[1]);
    else if (page === "compare") await comparePage();
    else if (page === "devices") await devicesPage();
  } catch (e) { message(main, e.message); }
  document.body.dataset.ready = "1";
}
start();
