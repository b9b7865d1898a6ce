// SPDX-License-Identifier: MIT
// overview.js - verdicts per class over time (stacked), totals, unknown by
// reason, per agent and host, and the live feed (/api/live, Server-Sent
// Events) that adds each newly stored verdict to the counts as it arrives.
// The page's state is its query string (?range=all&stage=final&agent=&host=).
"use strict";

(() => {
	const { el, $, api, big, nowNs, clear } = FP;
	const RANGES = { "15m": 900, "1h": 3600, "24h": 86400, "7d": 604800 };
	// Bucket widths offered to the server, seconds: about 60 bars a range.
	const BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800];

	let data = null;       // the last /api/overview answer, updated live
	let view = null;       // {range, stage, agent, host, since, until, open}
	let classChart = null, reasonChart = null;
	let source = null;     // the EventSource
	let refreshTimer = 0;
	let renderPending = false;

	function readState() {
		const q = new URLSearchParams(location.search);
		return {
			range: q.get("range") || "",
			stage: ["final", "block", "all"].includes(q.get("stage")) ? q.get("stage") : "final",
			agent: q.get("agent") || "",
			host: q.get("host") || "",
			since: q.get("since") || "",
			until: q.get("until") || "",
		};
	}

	function writeState(st) {
		const q = new URLSearchParams();
		q.set("range", st.range);
		q.set("stage", st.stage);
		if (st.agent) q.set("agent", st.agent);
		if (st.host) q.set("host", st.host);
		if (st.range === "custom") {
			q.set("since", String(st.since));
			q.set("until", String(st.until));
		}
		history.replaceState(null, "", "/?" + q.toString());
	}

	function pickBucket(spanNs) {
		const want = Number(spanNs / 1000000000n) / 60;
		for (const b of BUCKETS) if (b >= want) return b;
		return BUCKETS[BUCKETS.length - 1];
	}

	// The first and last stored start_ns of this view's verdicts (for "all
	// time"), or null when there are none.
	async function dataSpan(st) {
		const q = new URLSearchParams({ stage: st.stage, sort: "start_ns", limit: "1", since: "0" });
		if (st.agent) q.set("agent", st.agent);
		if (st.host) q.set("host", st.host);
		q.set("order", "asc");
		const first = await api("/api/flows?" + q.toString());
		if (!first.rows.length) return null;
		q.set("order", "desc");
		const last = await api("/api/flows?" + q.toString());
		return [big(first.rows[0].start_ns), big(last.rows[0].start_ns)];
	}

	async function fetchOverview(st, since, until) {
		const q = new URLSearchParams({ since: String(since), until: String(until),
			bucket: String(pickBucket(until - since)), stage: st.stage });
		if (st.agent) q.set("agent", st.agent);
		if (st.host) q.set("host", st.host);
		return api("/api/overview?" + q.toString());
	}

	function total(d) {
		return Object.values(d.totals || {}).reduce((a, b) => a + Number(b), 0);
	}

	async function load() {
		clearTimeout(refreshTimer);
		const st = readState();
		const note = $("range-note");
		note.textContent = "";
		let since, until, open = true, d;
		const auto = !st.range;
		if (auto) st.range = "1h";
		if (st.range === "custom") {
			since = big(st.since);
			until = big(st.until);
			open = false;
			if (!(until > since)) throw new Error("the custom range's end must come after its start");
		} else if (st.range === "all") {
			const span = await dataSpan(st);
			until = nowNs();
			since = until - 3600n * 1000000000n;
			if (span) {
				since = span[0];
				until = span[1] + 1n;
			}
		} else {
			const secs = BigInt(RANGES[st.range] || 3600);
			until = nowNs();
			since = until - secs * 1000000000n;
		}
		d = await fetchOverview(st, since, until);
		if (auto && total(d) === 0) {
			// Nothing recent: an older store (a replayed capture) shows all time.
			const span = await dataSpan(st);
			if (span) {
				st.range = "all";
				since = span[0];
				until = span[1] + 1n;
				d = await fetchOverview(st, since, until);
				note.textContent = "Nothing started in the last hour: showing all time.";
			}
		}
		view = { ...st, since: big(d.since !== undefined ? d.since : since),
			until: big(d.until !== undefined ? d.until : until), open };
		data = d;
		writeState(view);
		syncControls(view);
		render();
		// Relative ranges move with the clock: ask again every minute.
		if (st.range in RANGES) refreshTimer = setTimeout(() => load().catch(fail), 60000);
	}

	function syncControls(st) {
		$("range").value = st.range;
		$("stage").value = st.stage;
		$("agent").value = st.agent;
		$("host").value = st.host;
		$("custom").hidden = st.range !== "custom";
		if (st.range === "custom") {
			$("since").value = FP.nsToLocalInput(st.since);
			$("until").value = FP.nsToLocalInput(st.until);
		}
	}

	function label(ns, spanNs) {
		const s = FP.fmtTime(ns, false);
		return spanNs > 86400n * 1000000000n ? s.slice(5, 16) : s.slice(11, 19);
	}

	function render() {
		renderPending = false;
		const d = data;
		const classes = d.classes || FP.CLASSES;
		const buckets = d.buckets || [];
		const spanNs = view.until - view.since;
		const labels = buckets.map((t) => label(t, spanNs));
		const datasets = classes.map((c) => ({
			label: String(c),
			data: ((d.series || {})[c] || []).map(Number),
			backgroundColor: FP.color(c),
			stack: "verdicts",
		}));
		if (typeof Chart === "undefined") {
			FP.showError("The chart library did not load (/static/vendor/chart.js: Debian's libjs-chart.js)");
		} else if (!classChart) {
			classChart = new Chart($("chart-classes"), {
				type: "bar",
				data: { labels, datasets },
				options: {
					animation: false, maintainAspectRatio: false,
					scales: { x: { stacked: true, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
						y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
					plugins: { legend: { position: "bottom" } },
				},
			});
		} else {
			classChart.data.labels = labels;
			classChart.data.datasets = datasets;
			classChart.update("none");
		}
		renderTotals(d, classes);
		renderReasons(d);
		renderPerAgent(d, classes);
	}

	function renderTotals(d, classes) {
		const tb = clear($("totals").tBodies[0]);
		const all = total(d);
		for (const c of classes) {
			const n = Number((d.totals || {})[c] || 0);
			tb.appendChild(el("tr", { dataset: { class: String(c) } },
				el("td", {}, FP.classBadge(c)),
				el("td", { className: "num count", text: FP.fmtInt(n) }),
				el("td", { className: "num", text: all ? (100 * n / all).toFixed(1) + " %" : "-" })));
		}
		$("total-all").textContent = FP.fmtInt(all);
	}

	function renderReasons(d) {
		const r = d.unknown_reasons || {};
		const names = FP.REASONS.filter((x) => x in r).concat(Object.keys(r).filter((x) => !FP.REASONS.includes(x)));
		const all = total(d);
		const tb = clear($("unknown-reasons").tBodies[0]);
		for (const name of names)
			tb.appendChild(el("tr", { dataset: { reason: String(name) } },
				el("td", { text: name }),
				el("td", { className: "num count", text: FP.fmtInt(Number(r[name])) }),
				el("td", { className: "num", text: all ? (100 * Number(r[name]) / all).toFixed(1) + " %" : "-" })));
		if (typeof Chart === "undefined") return;
		const ds = [{ label: "unknown verdicts", data: names.map((x) => Number(r[x])),
			backgroundColor: names.map((x) => FP.color(x, FP.REASON_COLORS)) }];
		if (!reasonChart) {
			reasonChart = new Chart($("chart-unknown"), {
				type: "bar",
				data: { labels: names, datasets: ds },
				options: { indexAxis: "y", animation: false, maintainAspectRatio: false,
					scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
					plugins: { legend: { display: false } } },
			});
		} else {
			reasonChart.data.labels = names;
			reasonChart.data.datasets = ds;
			reasonChart.update("none");
		}
	}

	function renderPerAgent(d, classes) {
		const t = $("per-agent");
		clear(t.tHead).appendChild(el("tr", {}, el("th", { text: "agent" }), el("th", { text: "host" }),
			classes.map((c) => el("th", { className: "num" }, FP.classBadge(c))), el("th", { className: "num", text: "all" })));
		const tb = clear(t.tBodies[0]);
		for (const a of d.per_agent || []) {
			const tot = a.totals || {};
			const sum = Object.values(tot).reduce((x, y) => x + Number(y), 0);
			const q = new URLSearchParams({ agent: String(a.agent_id), stage: view.stage });
			tb.appendChild(el("tr", { dataset: { agent: String(a.agent_id), host: String(a.host) } },
				el("td", { className: "agent" }, el("a", { href: "/flows?" + q.toString(), text: a.agent_id })),
				el("td", { className: "host", text: a.host }),
				classes.map((c) => el("td", { className: "num", dataset: { class: String(c) }, text: FP.fmtInt(Number(tot[c] || 0)) })),
				el("td", { className: "num", text: FP.fmtInt(sum) })));
		}
	}

	function stageMatches(stage) {
		if (view.stage === "all") return true;
		if (view.stage === "final") return stage === "final";
		return stage === "early" || stage === "block";
	}

	// A verdict just stored: into the feed, and into the counts when it
	// belongs to this view.
	function onVerdict(v) {
		addToFeed(v);
		if (!data || !view) return;
		if (!stageMatches(v.stage)) return;
		if (view.agent && String(v.agent_id) !== view.agent) return;
		if (view.host && String(v.host) !== view.host) return;
		const start = big(v.start_ns);
		if (start < view.since || (!view.open && start >= view.until)) return;
		const cls = String(v.class);
		const classes = data.classes || FP.CLASSES;
		if (!classes.includes(cls)) return;
		data.totals[cls] = Number(data.totals[cls] || 0) + 1;
		if (cls === "unknown" && v.reason) {
			data.unknown_reasons = data.unknown_reasons || {};
			data.unknown_reasons[v.reason] = Number(data.unknown_reasons[v.reason] || 0) + 1;
		}
		const n = (data.buckets || []).length;
		if (n && data.series && data.series[cls]) {
			const w = big(data.bucket_ns || 1n);
			let i = Number((start - big(data.buckets[0])) / (w > 0n ? w : 1n));
			i = Math.max(0, Math.min(n - 1, i));
			data.series[cls][i] = Number(data.series[cls][i] || 0) + 1;
		}
		data.per_agent = data.per_agent || [];
		let a = data.per_agent.find((x) => String(x.agent_id) === String(v.agent_id) && String(x.host) === String(v.host));
		if (!a) {
			a = { agent_id: v.agent_id, host: v.host, totals: {} };
			data.per_agent.push(a);
		}
		a.totals[cls] = Number(a.totals[cls] || 0) + 1;
		// Many verdicts at once: one redraw a frame.
		if (!renderPending) {
			renderPending = true;
			requestAnimationFrame(render);
		}
	}

	function addToFeed(v) {
		const tb = $("live-feed").tBodies[0];
		const tr = el("tr", { dataset: { key: FP.verdictKey(v) } },
			el("td", { text: FP.fmtTime(v.start_ns) }),
			el("td", { className: "agent", text: v.agent_id }),
			el("td", { className: "host", text: v.host }),
			el("td", {}, el("a", { href: FP.flowHref(v), text: FP.endpoint(v.src, v.sport) + " \u2192 " + FP.endpoint(v.dst, v.dport) })),
			el("td", { text: v.stage }),
			el("td", { className: "class" }, FP.classBadge(v.class, v.reason)),
			el("td", { className: "num", text: FP.fmtConf(v.confidence) }));
		tb.insertBefore(tr, tb.firstChild);
		while (tb.rows.length > 20) tb.deleteRow(tb.rows.length - 1);
	}

	function setLive(on) {
		const status = $("live-status");
		if (source) {
			source.close();
			source = null;
		}
		if (!on) {
			status.textContent = "off";
			status.className = "live-status";
			return;
		}
		status.textContent = "connecting";
		status.className = "live-status wait";
		source = new EventSource("/api/live");
		source.addEventListener("open", () => {
			status.textContent = "live";
			status.className = "live-status on";
		});
		source.addEventListener("verdict", (e) => {
			let v;
			try {
				v = FP.parseJSON(e.data);
			} catch (err) {
				return;
			}
			if (v && typeof v === "object") onVerdict(v);
		});
		source.addEventListener("gap", (e) => {
			let n = "some";
			try {
				n = String(FP.parseJSON(e.data).dropped);
			} catch (err) { /* the count is only for the note */ }
			$("range-note").textContent = n + " live verdicts were dropped (this page could not keep up): the counts are low until the next refresh.";
		});
		source.addEventListener("error", () => {
			// EventSource reconnects by itself.
			status.textContent = "reconnecting";
			status.className = "live-status wait";
		});
	}

	function fail(e) {
		FP.showError(e.message || String(e));
	}

	function onSubmit(ev) {
		ev.preventDefault();
		const st = {
			range: $("range").value, stage: $("stage").value,
			agent: $("agent").value.trim(), host: $("host").value.trim(), since: "", until: "",
		};
		if (st.range === "custom") {
			const s = FP.localInputToNs($("since").value), u = FP.localInputToNs($("until").value);
			if (s === null || u === null) {
				FP.showError("Give both ends of the custom range (UTC).");
				return;
			}
			st.since = s;
			st.until = u;
		}
		FP.showError("");
		writeState(st);
		load().catch(fail);
	}

	document.addEventListener("DOMContentLoaded", () => {
		FP.header("/");
		$("controls").addEventListener("submit", onSubmit);
		$("range").addEventListener("change", () => {
			$("custom").hidden = $("range").value !== "custom";
			if ($("range").value !== "custom") $("controls").requestSubmit();
		});
		$("stage").addEventListener("change", () => $("controls").requestSubmit());
		$("live").addEventListener("change", () => setLive($("live").checked));
		load().then(() => setLive($("live").checked)).catch(fail);
	});
})();
