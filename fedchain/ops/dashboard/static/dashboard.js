// fedchain dashboard: polls the snapshot endpoint and re-renders; no reloads, no external URLs.
// Every value from the chain or the records is inserted as text (textContent), never as HTML.
"use strict";

const POLL_MS = 1500;
const state = { names: {} };

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const child of children || []) {
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function fmt(value, digits) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number" && digits !== undefined) return value.toFixed(digits);
  return String(value);
}

function short(text) {
  if (!text) return "–";
  return text.length > 16 ? text.slice(0, 8) + "…" + text.slice(-6) : text;
}

function clock(seconds) {
  return seconds ? new Date(seconds * 1000).toISOString().slice(11, 19) + " UTC" : "–";
}

function who(address) {
  const name = state.names[address.toLowerCase()];
  return name ? name + " (" + short(address) + ")" : address;
}

// A cell is a value, or {text, cls, title, data} for classes and data-* attributes.
function table(id, headers, rows) {
  const head = el("tr", {}, headers.map((h) => el("th", {}, [h])));
  const body = rows.map((row) =>
    el("tr", {}, row.map((cell) => {
      if (cell !== null && typeof cell === "object") {
        const attrs = { class: cell.cls, title: cell.title };
        for (const [k, v] of Object.entries(cell.data || {})) attrs["data-" + k] = v;
        return el("td", attrs, [fmt(cell.text)]);
      }
      return el("td", {}, [fmt(cell)]);
    })));
  return el("table", { id: id }, [head, ...body]);
}

function absent(text) {
  return el("p", { class: "absent" }, [text]);
}

function fill(id, ...nodes) {
  document.getElementById(id).replaceChildren(...nodes);
}

function renderSources(snap) {
  let chain = snap.chain_id === null ? "chain not read" : "chain " + snap.chain_id + ", block " + snap.block;
  if (snap.chain_read_at !== null && snap.chain_read_at < snap.taken_at) {
    chain += "; the chain is down: showing what it said at " + clock(Math.floor(snap.chain_read_at));
  }
  document.getElementById("summary").textContent =
    (snap.mode === "auditor" ? "Auditor view" : "Peer view") + " of the federation at " +
    snap.contract + " (" + chain + ")";
  fill("sources", ...snap.sources.map((s) =>
    el("li", { class: s.ok ? "ok" : "down", "data-source": s.name },
      [s.name + ": " + (s.ok ? "up" : "DOWN") + " — " + s.detail])));
}

function renderMembers(snap) {
  const rows = snap.members.map((m) => [
    { text: m.name || "–", cls: m.own ? "text own" : "text" },
    { text: m.address, cls: "text", data: { address: m.address } },
    { text: short(m.peer_id), title: m.peer_id, cls: "text" },
    { text: m.status, cls: "text" },
    { text: m.credit, data: { credit: m.address } },
    m.last_update_round,
    m.epsilon === null ? "–" : fmt(m.epsilon, 3),
  ]);
  fill("members", rows.length
    ? table("members-table", ["institution", "address", "peer ID", "status", "credit", "last update (round)", "ε on chain"], rows)
    : absent("No members read (see the chain's state above)."));
}

function renderTasks(snap) {
  const rows = snap.tasks.map((t) => [
    { text: t.task_id, data: { task: t.task_id } },
    { text: t.name || "–", cls: "text" },
    { text: [t.model, t.rule].filter(Boolean).join(", ") || "–", cls: "text" },
    { text: t.status, cls: "text" },
    t.current_round,
    { text: t.finalized_rounds + " / " + t.num_rounds, data: { finalized: t.finalized_rounds } },
    t.quorum,
    { text: t.phase, cls: "text" },
  ]);
  fill("tasks", rows.length
    ? table("tasks-table", ["task", "name (IPFS spec)", "model, rule", "status", "round", "finalized", "quorum", "now"], rows)
    : absent("No tasks on chain yet."));
}

function renderRounds(snap) {
  const rows = snap.rounds.map((r) => [
    r.task_id,
    { text: r.round, data: { round: r.task_id + "/" + r.round } },
    { text: r.status, cls: "text " + r.status, data: { status: r.status } },
    clock(r.opened_at),
    clock(r.ended_at),
    r.seconds,
    r.participants.length + " / " + r.eligible,
    r.attestations,
    { text: r.dissent.length ? r.dissent.map(who).join(", ") : "none", cls: "text" },
    { text: r.gas, data: { gas: r.task_id + "/" + r.round } },
    r.gas_per_participant,
    { text: short(r.aggregate_cid), title: r.aggregate_cid, cls: "text" },
    r.aggregate_in_ipfs === null ? "–" : (r.aggregate_in_ipfs ? "yes" : "no"),
  ]);
  fill("rounds", rows.length
    ? table("rounds-table", ["task", "round", "status", "opened", "ended", "seconds", "updates / eligible", "attestations", "dissent", "gas", "gas per update", "aggregate CID", "in own IPFS"], rows.reverse())
    : absent("No rounds yet."));
}

function renderQuality(snap) {
  const rec = snap.records;
  if (!rec) { fill("quality", absent(snap.records_absent)); return; }
  const names = Object.keys(rec.own_test).sort();
  const rounds = [...new Set(names.flatMap((n) => Object.keys(rec.own_test[n]).map(Number)))].sort((a, b) => a - b);
  if (!names.length || !rounds.length) { fill("quality", absent("No evaluated rounds in the records yet.")); return; }
  const rows = names.map((n) => [
    { text: n, cls: "text" },
    ...rounds.map((r) => fmt(rec.own_test[n][r], 4)),
    rec.local_only[n] === undefined ? "–" : fmt(rec.local_only[n], 4),
  ]);
  const note = Object.keys(rec.local_only).length ? [] :
    [absent("Local-only models: not in the records yet (a demo or simulate run writes them when it ends; a peer with [baseline] local_only = true, as fedchain init writes it, once its task completes).")];
  fill("quality",
    el("p", {}, ["Metric: " + (rec.metric || "–") + " of the agreed model on each institution's own test split, per round; last column: the model trained on its data alone."]),
    table("quality-table", ["institution", ...rounds.map((r) => "round " + r), "local-only"], rows),
    ...note);
}

function renderLeftOut(snap) {
  const rec = snap.records;
  if (!rec) { fill("left-out", absent(snap.records_absent)); return; }
  fill("left-out", rec.left_out.length
    ? table("left-out-table", ["round", "member", "outcome", "why"],
      rec.left_out.map((l) => [l.round, { text: who(l.member), cls: "text" }, { text: l.outcome, cls: "text" }, { text: l.why, cls: "text" }]))
    : el("p", {}, ["Every update in the records was used and credited."]));
}

function renderCredit(snap) {
  const rounds = [...new Set(snap.claims.map((c) => c.task_id + "/" + c.round))];
  const scores = {};
  for (const c of snap.claims) scores[c.member + "|" + c.task_id + "/" + c.round] = c.score;
  const rows = snap.members.map((m) => [
    { text: who(m.address), cls: "text" },
    ...rounds.map((r) => { const s = scores[m.address + "|" + r]; return s === undefined ? "–" : s; }),
    { text: m.credit, data: { credit: m.address } },
  ]);
  fill("credit", rows.length
    ? table("credit-table", ["member", ...rounds.map((r) => "task/round " + r), "credit on chain"], rows)
    : absent("No members read."),
    absent("Scores claimed on chain per finalized round (– : not claimed, or no credit)."));
}

function renderPrivacy(snap) {
  const onChain = snap.members.filter((m) => m.epsilon !== null);
  const parts = [onChain.length
    ? table("privacy-chain", ["member", "ε committed on chain (newest task)"], onChain.map((m) => [{ text: who(m.address), cls: "text" }, fmt(m.epsilon, 3)]))
    : absent("No ε committed on chain (differential privacy off in the newest task, or no update yet).")];
  const rec = snap.records;
  if (!rec) parts.push(absent("ε per round: " + snap.records_absent));
  else if (Object.keys(rec.epsilon).length) {
    const rows = Object.entries(rec.epsilon).flatMap(([n, pts]) => Object.entries(pts).map(([r, e]) => [{ text: n, cls: "text" }, Number(r), fmt(e, 3)]));
    parts.push(table("privacy-records", ["institution", "round", "ε after the round"], rows));
  } else parts.push(absent("No ε in the records (differential privacy off)."));
  fill("privacy", ...parts);
}

function render(snap) {
  state.names = {};
  for (const m of snap.members) if (m.name) state.names[m.address.toLowerCase()] = m.name;
  renderSources(snap);
  renderMembers(snap);
  renderTasks(snap);
  renderRounds(snap);
  renderQuality(snap);
  renderLeftOut(snap);
  renderCredit(snap);
  renderPrivacy(snap);
  document.getElementById("updated").textContent =
    "updated " + new Date(snap.taken_at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC; refreshes every " + POLL_MS / 1000 + " s";
  document.body.dataset.block = snap.block === null ? "" : String(snap.block);
}

async function poll() {
  try {
    const answer = await fetch("api/snapshot", { cache: "no-store", credentials: "same-origin" });
    if (!answer.ok) throw new Error("the dashboard server answered " + answer.status);
    render(await answer.json());
  } catch (err) {
    document.getElementById("updated").textContent = "cannot reach the dashboard server: " + err.message + " (retrying)";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
