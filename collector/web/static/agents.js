// SPDX-License-Identifier: MIT
// agents.js - every agent the store has heard from: last seen, version,
// verdicts, runs, health (ok / stale / losing, with the server's reason) and
// its counters (a row below it, opened by a button), loss counters first.
// Refreshed every 10 s.
"use strict";

(() => {
	const { el, $, api, clear } = FP;
	const LOSS = /lost|dropped|refused|_full/;

	// The counters of an agent: a button in its row that opens a full-width
	// row below with every counter, loss counters first.
	function counters(a, cols) {
		const c = a.counters || {};
		const names = Object.keys(c);
		if (!names.length) return [el("span", { className: "muted", text: "none sent" }), null];
		names.sort((x, y) => (LOSS.test(y) - LOSS.test(x)) || x.localeCompare(y));
		const losses = names.filter((n) => LOSS.test(n) && Number(c[n]) > 0);
		const grid = el("div", { className: "counter-grid" });
		for (const n of names)
			grid.appendChild(el("div", { className: "counter" + (LOSS.test(n) && Number(c[n]) > 0 ? " loss" : ""), dataset: { name: n } },
				el("span", { className: "name", text: n }), el("span", { className: "value", text: FP.fmtInt(c[n]) })));
		const row = el("tr", { className: "counters-row", dataset: { countersFor: String(a.agent_id) } },
			el("td", { colSpan: cols }, grid));
		row.hidden = !open.has(String(a.agent_id));
		const button = el("button", { type: "button", className: "toggle", text: names.length + " counters" +
			(losses.length ? ", " + losses.length + " loss counter" + (losses.length === 1 ? "" : "s") + " above 0" : "") });
		button.setAttribute("aria-expanded", String(!row.hidden));
		button.addEventListener("click", () => {
			row.hidden = !row.hidden;
			button.setAttribute("aria-expanded", String(!row.hidden));
			if (row.hidden) open.delete(String(a.agent_id));
			else open.add(String(a.agent_id));
		});
		return [button, row];
	}

	const open = new Set(); // agents whose counters are shown, kept across refreshes

	async function load() {
		const d = await api("/api/agents");
		const tb = clear($("agents").tBodies[0]);
		const cols = $("agents").tHead.rows[0].cells.length;
		for (const a of d.agents || []) {
			const health = String(a.health);
			const q = new URLSearchParams({ agent: String(a.agent_id), stage: "final" });
			const badge = el("span", { className: "health", text: health });
			if (["ok", "stale", "losing"].includes(health)) badge.classList.add(health);
			const [button, row] = counters(a, cols);
			tb.appendChild(el("tr", { className: "agent-row", dataset: { agent: String(a.agent_id), health } },
				el("td", { className: "agent" }, el("a", { href: "/flows?" + q.toString(), text: a.agent_id })),
				el("td", { className: "host", text: a.host }),
				el("td", { className: "version", text: a.version }),
				el("td", { className: "time" }, FP.fmtTime(a.last_seen_ns, false), el("br"),
					el("span", { className: "muted", text: FP.fmtAgo(a.last_seen_ns) })),
				el("td", { className: "num verdicts", text: FP.fmtInt(a.verdicts) }),
				el("td", { className: "num runs", text: FP.fmtInt(a.runs) }),
				el("td", { className: "health-cell" }, badge, a.why ? el("div", { className: "muted why", text: a.why }) : null),
				el("td", {}, button)));
			if (row) tb.appendChild(row);
		}
		$("empty").hidden = (d.agents || []).length > 0;
		document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
	}

	document.addEventListener("DOMContentLoaded", () => {
		FP.header("/agents");
		const tick = () => load().catch((e) => FP.showError(e.message));
		tick();
		setInterval(tick, 10000);
	});
})();
