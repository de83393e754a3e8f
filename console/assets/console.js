// sspemu console: the live list of calls through the SSP and each call's
// journey. Plain JavaScript, no build step, nothing fetched from elsewhere.
// Everything a consumer sent is shown with textContent, never as HTML.
"use strict";

(function () {
  const MAX_ROWS = 1000;

  // What each rule checks, in plain words, for a newcomer reading a journey.
  const RULES = {
    "tls": "TLS mutual authentication: a client certificate from the trusted CA, in date, not revoked; TLS 1.2 and a Spine cipher suite",
    "limits": "the request stays within the SSP's size and time limits",
    "method": "GET, POST and PUT go on; OPTIONS is answered by the SSP (CORS preflight); anything else is 405",
    "target": "the path after the SSP's address is the provider's absolute https:// URL",
    "ssp-headers": "Ssp-TraceID, Ssp-From, Ssp-To and Ssp-InteractionID are present and well formed",
    "cert-asid": "the client certificate's host name is the FQDN registered for Ssp-From",
    "sender": "Ssp-From is accredited to send this interaction",
    "receiver": "Ssp-To is accredited to receive this interaction",
    "endpoint": "the target URL starts with the service root registered for Ssp-To, byte for byte",
    "agreement": "a data-sharing agreement covers this sender, receiver and interaction",
    "jwt": "the bearer token is an unsigned GP Connect JWT whose claims follow the rules",
    "interaction-route": "Ssp-InteractionID matches the verb and the path below the service root",
    "audit": "the decision is recorded in the tamper-evident audit log before anything is answered or forwarded",
    "fault": "a fault rule may answer instead of the practice",
    "upstream": "the SSP forwards over its own mutual TLS and streams the practice's answer back",
  };
  // A consumer's own calls to the Spine services: no SSP, no ASIDs.
  const SPINE = { sds: "SDS", ldap: "SDS", pds: "PDS" };
  const ACTOR_NAMES = { consumer: "Consumer", ssp: "SSP", practice: "Practice", pds: "PDS", sds: "SDS" };

  const entries = new Map(); // id -> summary
  const tbody = document.querySelector("#entries tbody");
  const detail = document.getElementById("detail");
  const live = document.getElementById("live");
  const countEl = document.getElementById("count");
  const empty = document.getElementById("empty");
  const form = document.getElementById("filters");
  const interactions = document.getElementById("interactions");
  const seenInteractions = new Set();
  let selected = 0;
  let epoch = ""; // the run of sspemu the entries come from

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      else if (k === "style") for (const [prop, val] of Object.entries(v)) e.style.setProperty(prop, val);
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids.flat()) {
      if (k === undefined || k === null || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }
  const cls = (s) => String(s || "").replace(/[^a-z0-9]+/gi, "-").toLowerCase();
  const badge = (text, kind) => el("span", { class: "badge " + cls(kind || text) }, text);

  function clock(iso, millis) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const p = (n, w) => String(n).padStart(w || 2, "0");
    const s = p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
    return millis ? s + "." + p(d.getMilliseconds(), 3) : s;
  }
  function shortURN(urn) {
    return String(urn || "").replace("urn:nhs:names:services:gpconnect:", "");
  }
  function seconds(s) {
    if (!s) return "0 ms";
    return s < 1 ? (s * 1000).toFixed(1) + " ms" : s.toFixed(2) + " s";
  }

  // ---- filters ----
  function filters() {
    return {
      outcome: document.getElementById("f-outcome").value,
      asid: document.getElementById("f-asid").value.trim(),
      interaction: document.getElementById("f-interaction").value.trim().toLowerCase(),
      trace: document.getElementById("f-trace").value.trim().toLowerCase(),
    };
  }
  function matches(e, f) {
    if (f.outcome && e.outcome !== f.outcome) return false;
    if (f.asid && !(String(e.from).includes(f.asid) || String(e.to).includes(f.asid))) return false;
    if (f.interaction) {
      const hay = (e.interaction + " " + (e.interaction_name || "")).toLowerCase();
      if (!hay.includes(f.interaction)) return false;
    }
    if (f.trace && !String(e.trace_id).toLowerCase().includes(f.trace)) return false;
    return true;
  }
  function rerender() {
    const f = filters();
    const rows = [];
    const ids = [...entries.keys()].sort((a, b) => b - a);
    for (const id of ids) {
      const e = entries.get(id);
      if (matches(e, f)) rows.push(row(e, false));
    }
    tbody.replaceChildren(...rows);
    counts();
  }
  function counts() {
    const shown = tbody.children.length;
    countEl.textContent = shown === entries.size ? entries.size + " calls" : shown + " of " + entries.size + " calls";
    empty.hidden = entries.size > 0;
  }
  form.addEventListener("input", rerender);
  form.addEventListener("change", rerender);
  form.addEventListener("reset", () => setTimeout(rerender, 0));
  form.addEventListener("submit", (ev) => ev.preventDefault());

  // ---- the list ----
  function row(e, fresh) {
    const tls = e.kind === "tls";
    const spine = SPINE[e.kind];
    const ldap = e.kind === "ldap";
    const status = tls ? "—" : ldap ? (e.token || String(e.status)) : String(e.status);
    const statusClass = tls ? "" : ((ldap ? e.status === 0 : e.status < 400) ? "status-ok" : "status-bad");
    const tr = el("tr", {
      class: "entry" + (fresh ? " new" : "") + (e.id === selected ? " selected" : ""),
      "data-id": e.id, "data-outcome": e.outcome, "data-trace": e.trace_id, title: e.reason || "",
    },
      el("td", { class: "mono", title: clock(e.time, true) }, clock(e.time)),
      el("td", { class: "mono trace", title: e.trace_id }, e.trace_id || "—"),
      el("td", { class: "mono route" }, tls ? e.client + " → SSP" : spine ? e.client + " → " + spine : (e.from || "?") + " → " + (e.to || "?")),
      el("td", { title: spine ? e.request : e.interaction }, tls ? "TLS handshake" : spine ? e.method + " " + shortTarget(e.request) : (e.interaction_name || shortURN(e.interaction) || "—")),
      el("td", { class: statusClass }, status),
      el("td", {}, badge(e.outcome), e.rule ? el("span", { class: "note" }, " " + e.rule) : null,
        spine ? el("span", { class: "note results" }, " " + e.results + (e.results === 1 ? " result" : " results")) : null),
    );
    tr.addEventListener("click", () => open(e.id));
    return tr;
  }
  function add(e) {
    entries.set(e.id, e);
    if (e.interaction && !seenInteractions.has(e.interaction)) {
      seenInteractions.add(e.interaction);
      interactions.append(el("option", { value: e.interaction }, e.interaction_name || ""));
    }
    if (matches(e, filters())) {
      tbody.prepend(row(e, true));
      while (tbody.children.length > MAX_ROWS) tbody.lastChild.remove();
    }
    if (entries.size > MAX_ROWS) {
      const oldest = Math.min(...entries.keys());
      entries.delete(oldest);
    }
    counts();
  }

  // ---- the stream ----
  function connect() {
    const es = new EventSource("/console/events");
    es.addEventListener("open", () => { live.dataset.state = "live"; live.textContent = "live"; });
    es.addEventListener("error", () => { live.dataset.state = "reconnecting"; live.textContent = "reconnecting"; });
    es.addEventListener("hello", (ev) => {
      let h;
      try { h = JSON.parse(ev.data); } catch (err) { return; }
      if (epoch && h.epoch !== epoch) {
        // sspemu restarted: its entry IDs start again, so start again too.
        entries.clear();
        tbody.replaceChildren();
        selected = 0;
        counts();
      }
      epoch = h.epoch;
    });
    es.addEventListener("entry", (ev) => {
      let e;
      try { e = JSON.parse(ev.data); } catch (err) { return; }
      if (!entries.has(e.id)) add(e);
    });
  }

  // ---- a journey ----
  async function open(id) {
    selected = id;
    for (const tr of tbody.querySelectorAll("tr.selected")) tr.classList.remove("selected");
    const tr = tbody.querySelector('tr[data-id="' + id + '"]');
    if (tr) tr.classList.add("selected");
    if (location.hash !== "#" + id) history.replaceState(null, "", "#" + id);
    let d;
    try {
      const res = await fetch("/console/api/entries/" + id, { headers: { Accept: "application/json" } });
      d = await res.json();
      if (!res.ok) {
        detail.replaceChildren(el("p", { class: "note" }, d.error || "this call is no longer kept"));
        return;
      }
    } catch (err) {
      detail.replaceChildren(el("p", { class: "note" }, "the SSP could not be reached: " + err.message));
      return;
    }
    if (selected !== id) return;
    detail.replaceChildren(render(d));
  }

  function render(d) {
    if (SPINE[d.kind]) return renderSpine(d);
    const j = d.journey || {};
    const tls = d.kind === "tls";
    const out = el("div", { "data-entry": d.id, "data-kind": d.kind });
    out.append(el("h2", {}, badge(d.outcome), " ",
      tls ? "TLS handshake refused" : (d.interaction_name || shortURN(d.interaction) || "unknown interaction"),
      tls ? "" : " · " + d.status));
    out.append(el("p", { class: "sub mono" }, tls ? "from " + d.client + " at " + clock(d.time, true)
      : (j.method || "") + " " + (j.target || "") + "  ·  trace " + (d.trace_id || "none")));

    const failed = (d.steps || []).find((s) => s.verdict === "failed");
    if (failed) {
      out.append(el("div", { class: "why" + (tls ? " tls" : ""), id: "why", "data-rule": failed.name },
        el("strong", {}, "Refused at rule "), el("code", {}, failed.name),
        failed.token ? el("div", { class: "token" }, failed.token) : null,
        el("p", {}, failed.detail || d.reason || "")));
    } else if (d.outcome === "forwarded") {
      out.append(el("div", { class: "ok" }, "Every check passed: the SSP forwarded the call and passed the practice's answer back."));
    } else if (d.reason) {
      out.append(el("div", { class: "ok" }, d.reason));
    }

    out.append(el("h3", {}, "Journey"));
    out.append(sequence(d));

    if (d.jwt) out.append(tokenView(d.jwt));
    if (!tls) {
      out.append(el("h3", {}, "Request headers"));
      if (d.outcome === "forwarded") out.append(el("p", { class: "note" }, "As the SSP forwarded them: hop-by-hop headers removed, Forwarded added."));
      out.append(headers(j.request_header));
      out.append(el("h3", {}, "Response headers"), headers(j.response_header));
      out.append(el("h3", {}, "Timings"), kv([
        ["total", seconds(j.total_seconds)],
        ["practice (upstream)", j.upstream_seconds ? seconds(j.upstream_seconds) : "not called"],
        ["bytes in / out", (j.bytes_in || 0) + " / " + (j.bytes_out || 0)],
        ["client", j.client + (j.client_subject ? " (" + j.client_subject + ")" : "")],
        ["fault that acted", j.fault || "none"],
      ]));
      if (j.notes && j.notes.length) out.append(el("h3", {}, "Notes"), el("ul", {}, j.notes.map((n) => el("li", {}, n))));
    } else if (d.handshake) {
      out.append(el("h3", {}, "Handshake"), kv([
        ["client", d.handshake.client],
        ["reason", d.handshake.reason],
        ["what to change", d.handshake.advice],
        ["TLS said", d.handshake.detail],
      ]));
    }
    return out;
  }

  // renderSpine shows a consumer's call to SDS or PDS: one step on the
  // service's lifeline, and what was asked and answered.
  function renderSpine(d) {
    const c = d.spine || {};
    const out = el("div", { "data-entry": d.id, "data-kind": d.kind });
    out.append(el("h2", {}, badge(d.outcome), " ", SPINE[d.kind] + (d.kind === "ldap" ? " LDAP search" : " " + c.method), " · ",
      d.kind === "ldap" ? (c.result || String(c.status)) : String(c.status)));
    out.append(el("p", { class: "sub mono" }, c.request || ""));
    out.append(el("h3", {}, "Journey"), sequence(d));
    out.append(el("h3", {}, "Call"), kv([
      ["time", clock(c.time, true)],
      ["client", c.client || ""],
      ["request", (c.method || "") + " " + (c.request || "")],
      [d.kind === "ldap" ? "LDAP result" : "status", d.kind === "ldap" ? c.status + " " + (c.result || "") : String(c.status)],
      ["results", String(c.results)],
      ["X-Correlation-ID", c.correlation_id || "none"],
      ["X-Request-ID", c.request_id || "none"],
      ["took", seconds(c.seconds)],
    ]));
    return out;
  }

  // sequence draws the journey: consumer, any Spine services, the SSP with
  // its rules in order, and the practice, as a sequence diagram.
  function sequence(d) {
    const steps = d.steps || [];
    const actors = ["consumer"];
    for (const s of steps) if (s.actor !== "ssp" && s.actor !== "practice" && !actors.includes(s.actor)) actors.push(s.actor);
    const spine = !!SPINE[d.kind];
    if (!spine) actors.push("ssp", "practice");
    const col = (a) => actors.indexOf(a);
    // minmax(0, …): a long label must not widen its column, or the lifelines
    // of one row would not meet those of the next.
    const cols = actors.map((a) => (a === "ssp" ? "minmax(0, 3fr)" : "minmax(0, 1fr)")).join(" ");
    const seq = el("div", { class: "seq", id: "sequence", style: { "--cols": cols } });

    function lifeRow(...kids) {
      const r = el("div", { class: "seq-row" });
      actors.forEach((_, i) => r.append(el("div", { class: "life", style: { "grid-column": String(i + 1) } })));
      r.append(...kids);
      seq.append(r);
      return r;
    }
    function arrow(from, to, text, kind) {
      const a = col(from), b = col(to);
      const lo = Math.min(a, b), hi = Math.max(a, b);
      lifeRow(el("div", {
        class: "msg " + (b > a ? "right" : "left") + (kind ? " " + kind : ""),
        style: { "grid-column": (lo + 1) + " / " + (hi + 2), "--span": String(hi - lo + 1) },
      }, text));
    }
    const head = el("div", { class: "seq-row" });
    actors.forEach((a, i) => head.append(el("div", { class: "actor", style: { "grid-column": String(i + 1) } },
      ACTOR_NAMES[a] || a.toUpperCase(),
      a === "consumer" ? el("small", {}, d.kind === "tls" ? d.client : (d.from || "")) : null,
      a === "practice" ? el("small", {}, d.kind === "tls" ? "" : (d.to || "")) : null)));
    seq.append(head);

    const j = d.journey || {};
    const tls = d.kind === "tls";
    if (spine) {
      for (const s of steps) {
        arrow("consumer", s.actor, s.name, s.verdict === "failed" ? "bad" : "");
        arrow(s.actor, "consumer", (s.status ? String(s.status) : (s.detail || s.verdict)) + " · " + d.results + " results",
          s.verdict === "failed" ? "bad" : "good");
      }
      return seq;
    }
    arrow("consumer", "ssp", tls ? "TLS ClientHello" : (j.method || "") + " " + shortTarget(j.target));

    // Spine services the consumer called first (PDS, SDS), when the journey has them.
    for (const s of steps) {
      if (s.actor === "ssp" || s.actor === "practice") continue;
      arrow("consumer", s.actor, s.name, s.verdict === "failed" ? "bad" : "");
      arrow(s.actor, "consumer", s.status ? String(s.status) : s.verdict, s.verdict === "failed" ? "bad" : "good");
    }

    for (const s of steps) {
      if (s.actor !== "ssp") continue;
      const box = el("div", {
        class: "step", "data-rule": s.name, "data-verdict": s.verdict, style: { "grid-column": String(col("ssp") + 1) },
        title: RULES[s.name] || "",
      },
        el("span", { class: "name" }, s.name),
        el("span", { class: "what" }, RULES[s.name] || ""),
        badge(s.verdict),
        s.verdict === "failed" && s.token ? el("span", { class: "token" }, s.token) : null,
        s.detail ? el("span", { class: "detail-text" }, s.detail) : null);
      lifeRow(box);
    }

    const practice = steps.find((s) => s.actor === "practice");
    if (practice && practice.verdict !== "not run") {
      arrow("ssp", "practice", "forward over the SSP's mutual TLS", practice.verdict === "failed" ? "bad broken" : "");
      if (practice.verdict === "failed") {
        arrow("practice", "ssp", "no answer: " + (practice.detail || ""), "bad broken");
      } else {
        arrow("practice", "ssp", String(practice.status || d.status), d.status < 400 ? "good" : "bad");
      }
    }
    if (tls) {
      arrow("ssp", "consumer", "TLS alert: handshake refused (" + d.token + ")", "bad");
    } else {
      const failed = steps.find((s) => s.verdict === "failed" && s.actor === "ssp");
      const answer = String(d.status) + (d.token ? " " + d.token : "");
      arrow("ssp", "consumer", answer, failed || d.status >= 400 ? "bad" : "good");
    }
    return seq;
  }
  function shortTarget(t) {
    t = String(t || "");
    return t.length > 90 ? t.slice(0, 87) + "…" : t;
  }

  function tokenView(t) {
    const box = el("div", { id: "token" });
    box.append(el("h3", {}, "Token (JWT, decoded)"));
    box.append(el("p", { class: "note" }, "ssp.jwt is " + (t.mode || "enforce") +
      (t.mode === "off" ? ": the SSP did not judge the token; the verdicts say what enforce mode would have said." :
        t.mode === "log" ? ": failing claims were logged, not refused." : ".") +
      (t.complete === false ? " Judging stopped at a claim that could not be set aside: the rest are not judged." : "") +
      " The raw token is not shown."));
    if (t.envelope) {
      box.append(el("div", { class: "why" }, el("strong", {}, "The token could not be read: "), el("code", {}, t.envelope.name),
        el("p", {}, t.envelope.reason)));
      return box;
    }
    const table = el("table", { class: "claims" },
      el("colgroup", {}, el("col", { class: "c-claim" }), el("col"), el("col", { class: "c-verdict" })),
      el("thead", {}, el("tr", {}, el("th", {}, "Claim"), el("th", {}, "Value"), el("th", {}, "Verdict"))));
    const body = el("tbody");
    for (const c of t.claims || []) {
      const value = c.value && c.value.includes("\n") ? el("pre", {}, c.value) : el("code", {}, c.value || "(absent)");
      body.append(el("tr", { class: cls(c.verdict), "data-claim": c.name, "data-verdict": c.verdict },
        el("th", { class: "mono" }, c.name), el("td", {}, value),
        el("td", {}, badge(c.verdict), c.reason ? el("div", { class: "reason" }, c.reason) : null)));
    }
    table.append(body);
    box.append(table);
    return box;
  }

  function headers(h) {
    const rows = [];
    for (const name of Object.keys(h || {}).sort()) for (const v of h[name]) rows.push([name, v]);
    return rows.length ? kv(rows) : el("p", { class: "note" }, "none");
  }
  function kv(rows) {
    return el("table", { class: "kv" }, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))));
  }

  connect();
  counts();
  const fromHash = parseInt(location.hash.slice(1), 10);
  if (fromHash > 0) open(fromHash);
})();
