// gitops-agent web UI: the application list and one application's page, over the agent's JSON API.
// Plain JavaScript, no framework and no build step. Every text from the API goes into the page as a
// text node, never as HTML. Views poll the API every few seconds and redraw only what changed.
"use strict";

(() => {
  const TOKEN_KEY = "gitops-agent.token";
  const POLL_MS = 3000;
  const SYNC = ["Synced", "OutOfSync", "Unknown"];
  const HEALTH = ["Healthy", "Progressing", "Suspended", "Degraded", "Missing", "Unknown"];
  const ICON = {
    Synced: "✓", OutOfSync: "↻", Healthy: "♥", Progressing: "◔", Suspended: "⏸", Degraded: "✗",
    Missing: "⚠", Unknown: "?", Succeeded: "✓", Failed: "✗", Error: "✗", Running: "◔",
  };
  const main = document.getElementById("main");
  const who = document.getElementById("who");
  const banner = document.getElementById("banner");
  let view = 0; // bumped whenever the view changes: answers meant for an older view are dropped
  let timer = 0;

  // ---------------------------------------------------------------- DOM and API helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  // Children as h() takes them (nested arrays, strings, null for nothing) as a flat list of nodes.
  function nodes(children) {
    return children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false)
      .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
  }

  class Unauthorized extends Error {}

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (method === "POST") {
      headers["Content-Type"] = "application/json"; // the agent refuses a POST that is not JSON
      init.body = JSON.stringify(body || {});
    }
    const response = await fetch(path, init);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (response.status === 401) throw new Unauthorized((data && data.error) || "authentication required");
    // A sync that ran and failed answers 409 with its result: that is an answer, not an error.
    if (!response.ok && !(response.status === 409 && data && "phase" in data)) {
      throw new Error((data && data.error) || `HTTP ${response.status}`);
    }
    return data;
  }

  function showBanner(text) {
    banner.textContent = text || "";
    banner.hidden = !text;
  }

  function badge(status) {
    const word = status || "None";
    return h("span", { class: "status s-" + word.toLowerCase(), "data-status": word }, ICON[word] || "", " ", word);
  }

  function shortSha(sha) {
    return sha ? String(sha).slice(0, 7) : "";
  }

  function when(seconds) {
    if (!seconds) return h("span", { class: "muted" }, "never");
    const date = new Date(seconds * 1000);
    const ago = Math.max(0, Date.now() / 1000 - seconds);
    const text = ago < 60 ? `${Math.round(ago)}s ago` : ago < 3600 ? `${Math.round(ago / 60)}m ago`
      : ago < 86400 ? `${Math.round(ago / 3600)}h ago` : date.toISOString().slice(0, 16).replace("T", " ");
    return h("time", { datetime: date.toISOString(), title: date.toLocaleString() }, text);
  }

  function appPath(name) {
    return "/applications/" + encodeURIComponent(name);
  }

  function link(path, text) {
    return h("a", {
      href: path,
      onclick: (event) => {
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button) return;
        event.preventDefault();
        history.pushState(null, "", path);
        route();
      },
    }, text);
  }

  function conditionList(conditions) {
    if (!conditions || !conditions.length) return null;
    return h("ul", { class: "conditions" },
      conditions.map((c) => h("li", { "data-condition": c.type }, h("b", {}, c.type), ": ", c.message)));
  }

  function revision(sha, author, message) {
    if (!sha) return h("span", { class: "muted" }, "—");
    return h("span", { class: "rev" }, h("span", { class: "sha", title: sha }, shortSha(sha)), " ",
      author ? h("span", {}, author) : null, message ? h("span", { class: "msg" }, " — ", message) : null);
  }

  // Poll `load` until the view changes; call `draw` when what it returns differs from the last time.
  function poll(load, draw) {
    const mine = ++view;
    let last = "";
    const tick = async () => {
      clearTimeout(timer);
      try {
        const data = await load();
        if (mine !== view) return;
        // Redrawn when the data changes, and twice a minute anyway so that "3m ago" stays true.
        const seen = JSON.stringify(data) + Math.floor(Date.now() / 30000);
        if (seen !== last) {
          last = seen;
          draw(data);
        }
        showBanner("");
      } catch (error) {
        if (mine !== view) return;
        if (error instanceof Unauthorized) return expired();
        showBanner(`Cannot load: ${error.message}`); // the page keeps what it showed last
      }
      if (mine === view) timer = setTimeout(tick, POLL_MS);
    };
    tick();
    return { now: tick, current: () => mine === view };
  }

  // ---------------------------------------------------------------- log-in

  function expired() {
    sessionStorage.removeItem(TOKEN_KEY);
    login("The agent refused the token (unknown or revoked). Log in again.");
  }

  function login(message) {
    view++;
    clearTimeout(timer);
    who.replaceChildren();
    const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", required: true });
    main.replaceChildren(h("form", {
      class: "login",
      onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        start();
      },
    }, h("h1", {}, "Log in"),
    h("p", { class: "muted" }, "This agent needs an API token: a line of its token file, from whoever runs it."),
    h("label", { for: "token" }, "API token"), input,
    h("button", { type: "submit", class: "primary" }, "Log in"),
    message ? h("p", { class: "error", role: "alert" }, message) : null));
    input.focus();
  }

  function logout() {
    sessionStorage.removeItem(TOKEN_KEY);
    login("");
  }

  // ---------------------------------------------------------------- the application list

  const filters = { name: "", project: "", sync: "", health: "" };

  function choice(key, label, values) {
    return h("select", { "aria-label": label, "data-filter": key, onchange: (e) => { filters[key] = e.target.value; } },
      h("option", { value: "" }, label), values.map((v) => h("option", { value: v, selected: filters[key] === v }, v)));
  }

  function listView() {
    document.title = "Applications · gitops-agent";
    let apps = [];
    const rows = h("tbody");
    const count = h("span", { class: "muted" });
    let projects = choice("project", "All projects", []);
    const draw = () => {
      const shown = apps.filter((app) => app.name.toLowerCase().includes(filters.name.toLowerCase())
        && (!filters.project || app.project === filters.project)
        && (!filters.sync || app.sync_status === filters.sync)
        && (!filters.health || app.health_status === filters.health));
      count.textContent = `${shown.length} of ${apps.length}`;
      rows.replaceChildren(...nodes(shown.map(appRow)));
      if (!shown.length) rows.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No applications match.")));
    };
    const bar = h("div", { class: "filters", oninput: draw, onchange: draw },
      h("input", { type: "search", placeholder: "Filter by name", "aria-label": "Filter by name", value: filters.name,
        oninput: (e) => { filters.name = e.target.value; } }),
      projects, choice("sync", "Any sync status", SYNC), choice("health", "Any health", HEALTH), count);
    main.replaceChildren(h("h1", {}, "Applications"), bar, h("table", { class: "apps" },
      h("thead", {}, h("tr", {}, ["Name", "Project", "Sync", "Health", "Revision", "Last sync", "Conditions"]
        .map((title) => h("th", {}, title)))), rows));
    poll(() => api("GET", "/api/v1/applications"), (data) => {
      apps = data;
      const names = [...new Set(apps.map((app) => app.project))].sort();
      const known = [...projects.options].slice(1).map((option) => option.value);
      if (names.join("\n") !== known.join("\n")) {
        const fresh = choice("project", "All projects", names);
        projects.replaceWith(fresh);
        projects = fresh;
      }
      draw();
    });
  }

  function appRow(app) {
    const paused = app.auto_sync_paused;
    const phase = app.operation_phase && app.operation_phase !== "Succeeded" ? badge(app.operation_phase) : null;
    return h("tr", { "data-app": app.name },
      h("td", {}, link(appPath(app.name), app.name)),
      h("td", {}, app.project),
      h("td", { "data-col": "sync" }, h("span", { class: "stack" }, badge(app.sync_status), phase,
        paused ? h("span", { class: "status s-paused", title: paused.reason }, "⏸ auto-sync paused") : null)),
      h("td", { "data-col": "health" }, badge(app.health_status)),
      h("td", { class: "wrap" }, revision(app.revision, app.revision_author, app.revision_message)),
      h("td", {}, when(app.last_synced_at)),
      h("td", { class: "wrap" }, conditionList(app.conditions)
        || (app.message ? h("span", { class: "muted" }, app.message) : null)));
  }

  // ---------------------------------------------------------------- one application

  function appView(name) {
    document.title = `${name} · gitops-agent`;
    const base = "/api/v1/applications/" + encodeURIComponent(name);
    const page = h("div", { class: "app", "data-name": name });
    const actions = h("div", { class: "actions", hidden: true });
    const result = h("div");
    main.replaceChildren(h("p", {}, link("/", "← Applications")), page);
    let app = null;
    let busy = "";
    let rollbackTo = "";

    const act = async (verb, body) => {
      busy = verb;
      drawActions();
      let outcome;
      try {
        outcome = describe(verb, await api("POST", `${base}/${verb}`, body));
      } catch (error) {
        if (error instanceof Unauthorized) return expired();
        outcome = { ok: false, text: `${verb} failed: ${error.message}`, items: [] };
      }
      if (!poller.current()) return;
      busy = "";
      result.replaceChildren(h("div", { class: "result " + (outcome.ok ? "ok" : "bad"), role: "status" }, outcome.text,
        outcome.items.length ? h("ul", {}, outcome.items.map((item) => h("li", {}, item))) : null));
      drawActions();
      poller.now();
    };

    const drawActions = () => {
      const can = (app && app.permissions) || {};
      const buttons = [];
      if (can.sync) {
        buttons.push(h("button", { class: "primary", "data-action": "sync", disabled: !!busy,
          onclick: () => act("sync") }, busy === "sync" ? "Syncing…" : "Sync"));
      }
      // A refresh only reads (any viewer may ask for one through the API), but a page with no
      // way to change anything stays free of buttons: it is offered to those who may sync.
      if (can.refresh && can.sync) {
        buttons.push(h("button", { "data-action": "refresh", disabled: !!busy, onclick: () => act("refresh") },
          busy === "refresh" ? "Refreshing…" : "Refresh"));
      }
      if (can.resume && app.auto_sync_paused) {
        buttons.push(h("button", { "data-action": "resume", disabled: !!busy, onclick: () => act("resume") },
          "Resume auto-sync"));
      }
      const entries = (app && app.history) || [];
      if (can.rollback && entries.length) {
        if (!entries.some((e) => e.revision === rollbackTo)) rollbackTo = entries[Math.min(1, entries.length - 1)].revision;
        const pick = h("select", { "aria-label": "Revision to roll back to", "data-action": "rollback-revision",
          onchange: (e) => { rollbackTo = e.target.value; } },
        entries.map((e) => h("option", { value: e.revision, selected: e.revision === rollbackTo },
          `#${e.id} ${shortSha(e.revision)} ${e.phase} — ${e.message || ""}`.slice(0, 90))));
        buttons.push(h("span", { class: "sep" }), pick, h("button", { class: "danger", "data-action": "rollback",
          disabled: !!busy, onclick: () => act("rollback", { revision: rollbackTo }) },
        busy === "rollback" ? "Rolling back…" : "Roll back"));
      }
      actions.replaceChildren(...buttons);
      actions.hidden = !buttons.length;
    };

    const draw = (data) => {
      app = data.app;
      page.replaceChildren(...nodes(appSections(app, data.diffs, actions, result)));
      drawActions();
    };

    const poller = poll(async () => {
      const [detail, diff] = await Promise.all([api("GET", base), api("GET", `${base}/diff`)]);
      return { app: detail, diffs: diff.diffs || {} };
    }, draw);
  }

  function describe(verb, data) {
    if (verb === "refresh") return { ok: true, text: "Refresh queued: the app is compared again now.", items: [] };
    if (verb === "resume") {
      return { ok: true, text: data.resumed ? "Auto-sync resumed." : "Auto-sync was not paused; refreshed.", items: [] };
    }
    const ok = !data.error && data.phase === "Succeeded";
    const where = data.revision ? ` at ${shortSha(data.revision)}` : "";
    const text = `${verb === "rollback" ? "Rollback" : "Sync"}${where}: ${data.phase || "not run"}`
      + (data.error ? ` — ${data.error}` : data.message ? ` — ${data.message}` : "");
    const items = (data.changes || []).map((c) => `${c.action} ${c.kind}/${c.namespace ? c.namespace + "/" : ""}${c.name}`
      + (c.message ? `: ${c.message}` : ""));
    return { ok, text, items };
  }

  function appSections(app, diffs, actions, result) {
    const paused = app.auto_sync_paused;
    const operation = app.operation;
    const last = (app.history || [])[0];
    const hooks = operation ? operation.hooks : last ? last.hooks : [];
    return [
      h("h1", {}, app.name, badge(app.sync_status), badge(app.health_status)),
      h("dl", { class: "facts" },
        h("dt", {}, "Project"), h("dd", {}, app.project),
        h("dt", {}, "Revision"), h("dd", {}, revision(app.revision, app.revision_author, app.revision_message)),
        h("dt", {}, "Source"), h("dd", {}, h("code", {}, app.source.repo), " ", app.source.revision,
          app.source.path ? h("span", {}, " · ", h("code", {}, app.source.path)) : null),
        h("dt", {}, "Destination"), h("dd", {}, app.destination.server, " · namespace ",
          h("code", {}, app.destination.namespace || "—")),
        h("dt", {}, "Last sync"), h("dd", {}, when(app.last_synced_at)),
        h("dt", {}, "Compared"), h("dd", {}, when(app.reconciled_at))),
      paused ? h("p", { class: "note" }, `Auto-sync paused: ${paused.reason}. A new commit or “Resume” lifts it.`) : null,
      operation ? h("p", { class: "note" }, badge("Running"), ` Sync to ${shortSha(operation.revision)}: `,
        operation.message || "in progress") : null,
      conditionList(app.conditions),
      actions, result,
      h("h2", {}, "Resources"), resourceTable(app.resources || [], diffs),
      h("h2", {}, "Differences"), diffSection(diffs),
      h("h2", {}, last && !operation ? "Hooks of the last sync" : "Hooks"), hookTable(hooks || []),
      h("h2", {}, "Sync history"), historyTable(app.history || []),
    ];
  }

  function objectKey(r) {
    return r.namespace ? `${r.kind}/${r.namespace}/${r.name}` : `${r.kind}/${r.name}`;
  }

  function resourceTable(resources, diffs) {
    if (!resources.length) return h("p", { class: "muted" }, "No resources yet.");
    const byKind = new Map();
    for (const r of [...resources].sort((a, b) => objectKey(a).localeCompare(objectKey(b)))) {
      if (!byKind.has(r.kind)) byKind.set(r.kind, []);
      byKind.get(r.kind).push(r);
    }
    const groups = [...byKind.entries()].map(([kind, items]) => h("tbody", { "data-kind": kind },
      h("tr", { class: "kind" }, h("th", { colspan: 5 }, `${kind} (${items.length})`)),
      items.map((r) => h("tr", { "data-resource": objectKey(r) },
        h("td", {}, r.namespace || h("span", { class: "muted" }, "(cluster)")),
        h("td", {}, r.name),
        h("td", {}, r.sync_status ? badge(r.sync_status) : h("span", { class: "muted" }, r.action || "—")),
        h("td", {}, r.health_status ? badge(r.health_status) : null),
        h("td", { class: "wrap" }, [r.health_message, r.action ? `last sync: ${r.action}` : "", r.message]
          .filter(Boolean).join(" · "), diffs[objectKey(r)] ? h("span", { class: "muted" }, " (diff below)") : null)))));
    return h("table", { class: "resources" },
      h("thead", {}, h("tr", {}, ["Namespace", "Name", "Sync", "Health", "Message"].map((t) => h("th", {}, t)))),
      groups);
  }

  function diffSection(diffs) {
    const keys = Object.keys(diffs).sort();
    if (!keys.length) return h("p", { class: "muted", "data-diffs": "none" }, "Live objects match Git.");
    return keys.map((key) => h("section", { class: "diff", "data-diff": key }, h("h3", {}, key),
      h("pre", {}, diffs[key].replace(/\n$/, "").split("\n").map((line) => h("span", {
        class: line.startsWith("@@") ? "hunk" : line.startsWith("+") && !line.startsWith("+++") ? "add"
          : line.startsWith("-") && !line.startsWith("---") ? "del" : null,
      }, line || " ")))));
  }

  function hookTable(hooks) {
    if (!hooks.length) return h("p", { class: "muted" }, "No hooks ran.");
    return h("table", { class: "hooks" },
      h("thead", {}, h("tr", {}, ["Phase", "Object", "Status", "Message"].map((t) => h("th", {}, t)))),
      h("tbody", {}, hooks.map((run) => h("tr", {}, h("td", {}, run.phase), h("td", {}, objectKey(run)),
        h("td", {}, badge(run.status)), h("td", { class: "wrap" }, run.message, run.deleted ? " (deleted)" : "")))));
  }

  function historyTable(entries) {
    if (!entries.length) return h("p", { class: "muted" }, "No sync yet.");
    return h("table", { class: "history" },
      h("thead", {}, h("tr", {}, ["ID", "Revision", "Trigger", "Initiated by", "Phase", "Finished", "Duration",
        "Changes", "Author", "Message"].map((t) => h("th", {}, t)))),
      h("tbody", {}, entries.map((e) => h("tr", { "data-history": e.id },
        h("td", {}, e.id), h("td", {}, h("span", { class: "sha", title: e.revision }, shortSha(e.revision))),
        h("td", {}, e.trigger), h("td", {}, e.initiated_by || h("span", { class: "muted" }, "automated")),
        h("td", {}, badge(e.phase)), h("td", {}, when(e.finished)),
        h("td", {}, `${Math.max(0, e.finished - e.started).toFixed(1)}s`),
        h("td", {}, `+${e.created} ~${e.configured} -${e.pruned}` + (e.failed ? ` ✗${e.failed}` : "")),
        h("td", {}, e.author), h("td", { class: "wrap" }, e.message)))));
  }

  // ---------------------------------------------------------------- start and routing

  function route() {
    view++;
    clearTimeout(timer);
    showBanner("");
    const match = location.pathname.match(/^\/applications\/([^/]+)$/);
    if (match) appView(decodeURIComponent(match[1]));
    else listView();
  }

  async function start() {
    let session;
    try {
      session = await api("GET", "/api/v1/session");
    } catch (error) {
      showBanner(`Cannot reach the agent: ${error.message}`);
      timer = setTimeout(start, POLL_MS); // it may be restarting: try again
      return;
    }
    if (session.auth && !session.authenticated) {
      const had = sessionStorage.getItem(TOKEN_KEY);
      sessionStorage.removeItem(TOKEN_KEY);
      return login(had ? "The agent does not know this token." : "");
    }
    who.replaceChildren(...(session.auth ? [h("span", { "data-user": session.user }, session.user),
      h("button", { type: "button", onclick: logout }, "Log out")] : []));
    route();
  }

  window.addEventListener("popstate", route);
  start();
})();
