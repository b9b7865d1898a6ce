// SPDX-License-Identifier: MIT
// flows.js - the stored verdicts as a table: the filter form, sortable
// columns, paging.  The page's state is its query string, in the names of
// /api/flows (class, agent, host, addr, port, proto, stage, since, until,
// min_conf, max_conf, sort, order, limit, offset), so a filtered page is a link.
"use strict";

(() => {
	const { el, $, api, clear } = FP;
	const KEYS = ["class", "agent", "host", "addr", "port", "proto", "stage", "since", "until",
		"min_conf", "max_conf", "sort", "order", "limit", "offset"];

	function readState() {
		const q = new URLSearchParams(location.search);
		const st = {};
		for (const k of KEYS) if (q.get(k) !== null && q.get(k) !== "") st[k] = q.get(k);
		st.stage = st.stage || "final";
		st.sort = st.sort || "start_ns";
		st.order = st.order === "asc" ? "asc" : "desc";
		st.limit = String(Math.min(500, Math.max(1, parseInt(st.limit || "50", 10) || 50)));
		st.offset = String(Math.max(0, parseInt(st.offset || "0", 10) || 0));
		return st;
	}

	function query(st) {
		const q = new URLSearchParams();
		for (const k of KEYS) if (st[k] !== undefined && st[k] !== "") q.set(k, st[k]);
		return q.toString();
	}

	function go(st, push = true) {
		const url = "/flows?" + query(st);
		if (push) history.pushState(null, "", url);
		load().catch((e) => FP.showError(e.message));
	}

	function fillForm(st) {
		const classes = (st.class || "").split(",");
		for (const o of $("f-class").options) o.selected = classes.includes(o.value);
		$("f-agent").value = st.agent || "";
		$("f-host").value = st.host || "";
		$("f-addr").value = st.addr || "";
		$("f-port").value = st.port || "";
		$("f-proto").value = st.proto || "";
		$("f-stage").value = st.stage;
		$("f-since").value = st.since ? FP.nsToLocalInput(st.since) : "";
		$("f-until").value = st.until ? FP.nsToLocalInput(st.until) : "";
		$("f-min-conf").value = st.min_conf || "";
		$("f-max-conf").value = st.max_conf || "";
		$("f-limit").value = st.limit;
		for (const th of $("flows").tHead.rows[0].cells) {
			th.classList.remove("asc", "desc");
			if (th.dataset.sort === st.sort) th.classList.add(st.order);
		}
	}

	function readForm() {
		const st = readState();
		const classes = [...$("f-class").selectedOptions].map((o) => o.value);
		const since = FP.localInputToNs($("f-since").value), until = FP.localInputToNs($("f-until").value);
		const out = {
			class: classes.join(","), agent: $("f-agent").value.trim(), host: $("f-host").value.trim(),
			addr: $("f-addr").value.trim(), port: $("f-port").value.trim(), proto: $("f-proto").value,
			stage: $("f-stage").value, since: since === null ? "" : String(since),
			until: until === null ? "" : String(until), min_conf: $("f-min-conf").value.trim(),
			max_conf: $("f-max-conf").value.trim(), sort: st.sort, order: st.order,
			limit: $("f-limit").value, offset: "0",
		};
		return out;
	}

	function row(v) {
		return el("tr", { dataset: { key: FP.verdictKey(v), stage: String(v.stage) } },
			el("td", { className: "time" }, el("a", { href: FP.flowHref(v), text: FP.fmtTime(v.start_ns), title: String(v.start_ns) + " ns" })),
			el("td", { className: "host", text: v.host }),
			el("td", { className: "agent", text: v.agent_id }),
			el("td", { className: "flow" }, el("a", { href: FP.flowHref(v), text: "#" + String(v.flow_id) }),
				v.stage === "final" ? null : el("span", { className: "muted", text: " block " + String(v.block_index) })),
			el("td", { className: "src", text: FP.endpoint(v.src, v.sport) }),
			el("td", { className: "dst", text: FP.endpoint(v.dst, v.dport) }),
			el("td", { text: v.proto }),
			el("td", { className: "stage", text: v.stage }),
			el("td", { className: "class", dataset: { class: String(v.class), reason: String(v.reason) } }, FP.classBadge(v.class, v.reason)),
			el("td", { className: "num conf", text: FP.fmtConf(v.confidence) }),
			el("td", { className: "num", text: FP.fmtInt(Number(v.packets_fwd) + Number(v.packets_rev)) }),
			el("td", { className: "num", text: FP.fmtBytes(Number(v.payload_bytes_fwd) + Number(v.payload_bytes_rev)) }),
			el("td", { className: "time received", text: FP.fmtTime(v.received_ns, false), title: FP.fmtTime(v.received_ns) + " UTC" }));
	}

	let loading = 0;
	async function load() {
		const my = ++loading;
		const st = readState();
		fillForm(st);
		FP.showError("");
		const d = await api("/api/flows?" + query(st));
		if (my !== loading) return; // a newer request is on its way
		const tb = clear($("flows").tBodies[0]);
		for (const v of d.rows) tb.appendChild(row(v));
		const off = Number(d.offset || 0), lim = Number(d.limit || st.limit);
		$("empty").hidden = d.rows.length > 0;
		$("page-info").textContent = d.rows.length ? "rows " + (off + 1) + "\u2013" + (off + d.rows.length) + (d.more ? "" : " (the last)") : "";
		$("prev").disabled = off === 0;
		$("next").disabled = !d.more;
		$("prev").dataset.offset = String(Math.max(0, off - lim));
		$("next").dataset.offset = String(off + lim);
		// For scripts and tests: a new value each time a table is shown.
		document.body.dataset.loaded = String(my);
	}

	document.addEventListener("DOMContentLoaded", () => {
		FP.header("/flows");
		$("filter").addEventListener("submit", (ev) => {
			ev.preventDefault();
			go(readForm());
		});
		$("f-reset").addEventListener("click", () => go({ stage: "final" }));
		for (const id of ["prev", "next"])
			$(id).addEventListener("click", () => go({ ...readState(), offset: $(id).dataset.offset }));
		for (const th of $("flows").tHead.rows[0].cells) {
			if (!th.dataset.sort) continue;
			th.tabIndex = 0;
			const sort = () => {
				const st = readState();
				const order = st.sort === th.dataset.sort && st.order === "desc" ? "asc" : "desc";
				go({ ...st, sort: th.dataset.sort, order, offset: "0" });
			};
			th.addEventListener("click", sort);
			th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
		}
		window.addEventListener("popstate", () => load().catch((e) => FP.showError(e.message)));
		load().catch((e) => FP.showError(e.message));
	});
})();
