// SPDX-License-Identifier: MIT
// common.js - what every dashboard page shares: the JSON API with exact
// 64-bit integers, the session and its CSRF token, DOM building (text only:
// nothing from the server ever goes through innerHTML), the header, and
// formatting of times, numbers and classes.
"use strict";

const FP = (() => {
	const CLASSES = ["voip", "video", "file_transfer", "chat", "browsing", "unknown"];
	const REASONS = ["sparse", "other", "disagree", "low_confidence", "untracked", "unspecified"];
	const COLORS = {
		voip: "#4e79a7", video: "#e15759", file_transfer: "#f28e2b", chat: "#59a14f",
		browsing: "#b07aa1", unknown: "#9d9d9d", other: "#bab0ac",
	};
	const REASON_COLORS = {
		sparse: "#c7c7c7", other: "#bab0ac", disagree: "#edc948", low_confidence: "#ff9da7",
		untracked: "#9c755f", unspecified: "#d3d3d3",
	};

	// JSON.parse keeping integers beyond 2^53 exact (run ids, ns times) as
	// BigInt: the reviver's source text where the browser gives it (Chromium
	// 114+), else a scan that turns such numbers into marked strings first.
	let sourceAccess = false;
	try {
		JSON.parse("1", (k, v, ctx) => { sourceAccess = !!(ctx && ctx.source === "1"); return v; });
	} catch (e) { sourceAccess = false; }
	const BIG_MARK = "\u0000fp-big:";
	function parseJSON(text) {
		if (sourceAccess)
			return JSON.parse(text, (k, v, ctx) =>
				typeof v === "number" && !Number.isSafeInteger(v) && ctx &&
				/^-?\d+$/.test(ctx.source) ? BigInt(ctx.source) : v);
		const marked = text.replace(/"(?:[^"\\]|\\.)*"|-?\d{16,}(?![.eE\d])/g, (m) =>
			m[0] === '"' ? m : (Number.isSafeInteger(Number(m)) ? m : '"' + BIG_MARK + m + '"'));
		return JSON.parse(marked, (k, v) =>
			typeof v === "string" && v.startsWith(BIG_MARK) ? BigInt(v.slice(BIG_MARK.length)) : v);
	}

	function big(v) {
		if (typeof v === "bigint") return v;
		if (typeof v === "number") return BigInt(Math.trunc(v));
		if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
		return 0n;
	}
	function nowNs() { return BigInt(Date.now()) * 1000000n; }
	function nsToMs(ns) { return Number(big(ns) / 1000000n); }

	class ApiError extends Error {
		constructor(status, message) { super(message); this.status = status; }
	}

	let session = null;
	async function getSession() {
		if (!session) session = await api("/api/session");
		return session;
	}

	// GET (or POST with opts) an /api/ path; 401 sends the page to /login.
	async function api(path, opts = {}) {
		const init = { credentials: "same-origin", headers: { Accept: "application/json" } };
		if (opts.method && opts.method !== "GET") {
			const s = await getSession();
			init.method = opts.method;
			init.headers["X-CSRF-Token"] = s.csrf;
			if (opts.body !== undefined) {
				init.body = opts.body;
				init.headers["Content-Type"] = opts.contentType || "application/octet-stream";
			}
		}
		const r = await fetch(path, init);
		const text = await r.text();
		if (r.status === 401) {
			location.assign("/login");
			throw new ApiError(401, "login required");
		}
		let body = null;
		try {
			body = text ? parseJSON(text) : null;
		} catch (e) {
			throw new ApiError(r.status, path + ": the answer is not JSON (HTTP " + r.status + ")");
		}
		if (!r.ok)
			throw new ApiError(r.status, (body && typeof body.error === "string") ? body.error
				: path + ": HTTP " + r.status);
		return body;
	}

	// el("td", {className: "x", dataset: {k: v}}, "text", child, ...): strings
	// become text nodes, never markup.
	function el(tag, attrs, ...children) {
		const e = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {})) {
			if (v === undefined || v === null) continue;
			if (k === "dataset") Object.assign(e.dataset, v);
			else if (k === "text") e.textContent = String(v);
			else if (k in e && k !== "list") e[k] = v;
			else e.setAttribute(k, String(v));
		}
		for (const c of children) append(e, c);
		return e;
	}
	function append(parent, c) {
		if (c === undefined || c === null || c === false) return;
		if (Array.isArray(c)) c.forEach((x) => append(parent, x));
		else if (c instanceof Node) parent.appendChild(c);
		else parent.appendChild(document.createTextNode(String(c)));
	}
	function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
	function $(id) { return document.getElementById(id); }

	function pad(n, w = 2) { return String(n).padStart(w, "0"); }
	// ns since the epoch -> "2026-11-27 10:00:00.123" (UTC).
	function fmtTime(ns, withMs = true) {
		if (ns === null || ns === undefined) return "-";
		const b = big(ns);
		const d = new Date(Number(b / 1000000n));
		if (isNaN(d.getTime())) return String(ns);
		let s = d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
			pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
		if (withMs) s += "." + pad(d.getUTCMilliseconds(), 3);
		return s;
	}
	function fmtDuration(ns) {
		const s = Number(big(ns)) / 1e9;
		if (s < 1) return (s * 1000).toFixed(0) + " ms";
		if (s < 120) return s.toFixed(1) + " s";
		if (s < 7200) return (s / 60).toFixed(1) + " min";
		return (s / 3600).toFixed(1) + " h";
	}
	function fmtAgo(ns) {
		if (ns === null || ns === undefined) return "never";
		const s = Number(nowNs() - big(ns)) / 1e9;
		if (s < 0) return "just now";
		return fmtDuration(BigInt(Math.round(s * 1e9))) + " ago";
	}
	function fmtInt(n) {
		if (n === null || n === undefined) return "-";
		return typeof n === "bigint" ? n.toString() : Number(n).toLocaleString("en-US");
	}
	function fmtConf(c) { return (c === null || c === undefined) ? "-" : Number(c).toFixed(4); }
	function fmtBytes(n) {
		const v = Number(n);
		if (!isFinite(v)) return "-";
		if (v < 1024) return v + " B";
		if (v < 1048576) return (v / 1024).toFixed(1) + " KiB";
		if (v < 1073741824) return (v / 1048576).toFixed(1) + " MiB";
		return (v / 1073741824).toFixed(2) + " GiB";
	}
	function endpoint(addr, port) {
		const a = String(addr === undefined || addr === null ? "?" : addr);
		return (a.includes(":") ? "[" + a + "]" : a) + ":" + String(port);
	}
	function classBadge(cls, reason) {
		const c = String(cls);
		const b = el("span", { className: "badge", text: c });
		if (CLASSES.includes(c) || c === "other") b.classList.add("c-" + c);
		else b.classList.add("c-foreign");
		if (reason && reason !== "ok") append(b, el("span", { className: "reason", text: " (" + reason + ")" }));
		return b;
	}
	// A class's (or reason's) colour; names from the server are only looked up.
	function color(name, table = COLORS) {
		return Object.prototype.hasOwnProperty.call(table, name) ? table[name] : COLORS.other;
	}
	// The probabilities as labelled bars (the width set through the CSSOM,
	// which the CSP allows; no style attribute).
	function probBars(probs) {
		const box = el("div", { className: "probs" });
		if (!probs || typeof probs !== "object") return box;
		const entries = Array.isArray(probs) ? probs.map((p, i) => ["#" + i, p]) : Object.entries(probs);
		for (const [name, p] of entries) {
			const v = Number(p);
			const fill = el("div", { className: "fill" });
			fill.style.width = (isFinite(v) ? Math.max(0, Math.min(1, v)) * 100 : 0) + "%";
			fill.style.backgroundColor = color(name);
			box.appendChild(el("div", { className: "prob", dataset: { name: String(name) } },
				el("span", { className: "name", text: name }),
				el("div", { className: "bar" }, fill),
				el("span", { className: "value", text: isFinite(v) ? v.toFixed(4) : String(p) })));
		}
		return box;
	}

	function flowHref(v) {
		const q = new URLSearchParams({ agent_id: String(v.agent_id), run_id: String(v.run_id),
			flow_id: String(v.flow_id) });
		return "/flow?" + q.toString();
	}
	function verdictKey(v) { return String(v.agent_id) + "/" + String(v.run_id) + "/" + String(v.seq); }

	// "2026-11-27T10:00:00" (a datetime-local value, read as UTC) <-> ns.
	function localInputToNs(s) {
		if (!s) return null;
		const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3}))?)?$/.exec(s);
		if (!m) return null;
		const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0), +((m[7] || "0").padEnd(3, "0")));
		return BigInt(ms) * 1000000n;
	}
	function nsToLocalInput(ns) {
		if (ns === null || ns === undefined || ns === "") return "";
		return fmtTime(ns, false).replace(" ", "T");
	}

	function showError(msg) {
		const box = $("error");
		if (!box) return;
		box.textContent = msg;
		box.hidden = !msg;
	}

	// The header: navigation, who is logged in, log out.
	async function header(active) {
		const nav = $("nav");
		if (nav) {
			const pages = [["/", "Overview"], ["/flows", "Flows"], ["/agents", "Agents"], ["/classify", "Classify a capture"]];
			for (const [href, label] of pages) {
				const a = el("a", { href, text: label });
				if (href === active) a.classList.add("active");
				nav.appendChild(a);
			}
		}
		try {
			const s = await getSession();
			const who = $("user");
			if (who) who.textContent = String(s.user) + (s.via === "cert" ? " (certificate)" : "");
		} catch (e) {
			if (e.status !== 401) showError(e.message);
		}
		const out = $("logout");
		if (out)
			out.addEventListener("click", async () => {
				try {
					const s = await getSession();
					await fetch("/logout", { method: "POST", credentials: "same-origin",
						headers: { "X-CSRF-Token": s.csrf } });
				} finally {
					location.assign("/login");
				}
			});
	}

	return {
		CLASSES, REASONS, COLORS, REASON_COLORS, parseJSON, big, nowNs, nsToMs, api, ApiError,
		getSession, el, append, clear, $, fmtTime, fmtDuration, fmtAgo, fmtInt, fmtConf, fmtBytes,
		endpoint, classBadge, color, probBars, flowHref, verdictKey, localInputToNs, nsToLocalInput, showError, header,
	};
})();
