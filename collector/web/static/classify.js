// SPDX-License-Identifier: MIT
// classify.js - upload a capture to POST /api/classify (the collector runs
// `flowpic classify --json --blocks` on it) and show its flows, its blocks
// and their FlowPics.  Nothing is stored unless the box is ticked.
"use strict";

(() => {
	const { el, $, api, clear } = FP;

	function summary(lines) {
		const box = clear($("summary"));
		const sums = lines.filter((l) => l.type === "summary");
		for (const s of sums) {
			if ("records" in s) {
				box.appendChild(el("p", { className: "file-summary" },
					(s.file ? String(s.file) + ": " : "") + String(s.format || "capture") + ", " +
					FP.fmtInt(s.records) + " records, " + FP.fmtInt(s.flows) + " flows, " + FP.fmtInt(s.blocks) + " blocks" +
					(s.complete === false ? " (read only in part: the file is truncated or corrupt)" : "") +
					(Number(s.skipped_total) ? ", " + FP.fmtInt(s.skipped_total) + " records skipped" : "")));
			}
			if (s.per_class) {
				const t = el("table", { className: "data compact", id: "per-class" },
					el("thead", {}, el("tr", {}, el("th", { text: "class" }), el("th", { className: "num", text: "flows" }),
						el("th", { className: "num", text: "packets" }))));
				const tb = el("tbody");
				for (const [c, v] of Object.entries(s.per_class))
					tb.appendChild(el("tr", { dataset: { class: c } }, el("td", {}, FP.classBadge(c)),
						el("td", { className: "num count", text: FP.fmtInt(v.flows) }),
						el("td", { className: "num", text: FP.fmtInt(v.packets) })));
				t.appendChild(tb);
				box.appendChild(t);
				if (s.model) box.appendChild(el("p", { className: "muted", text: "model: " + String(s.model) }));
			}
		}
	}

	function flowsTable(flows) {
		const tb = clear($("results").tBodies[0]);
		for (const f of flows)
			tb.appendChild(el("tr", { dataset: { flowId: String(f.flow_id) } },
				el("td", { className: "flow", text: "#" + String(f.flow_id) }),
				el("td", { text: f.proto }),
				el("td", { text: FP.endpoint(f.src, f.sport) }),
				el("td", { text: FP.endpoint(f.dst, f.dport) }),
				el("td", { className: "num", text: FP.fmtInt(f.packets) }),
				el("td", { className: "num", text: FP.fmtBytes(f.bytes) }),
				el("td", { text: FP.fmtDuration(BigInt(Math.round(Number(f.duration || 0) * 1e9))) }),
				el("td", { className: "class", dataset: { class: String(f.class), reason: String(f.reason) } },
					FP.classBadge(f.class, f.reason), f.early ? el("span", { className: "muted", text: " early" }) : null),
				el("td", { className: "num conf", text: FP.fmtConf(f.confidence) }),
				el("td", { className: "num", text: FP.fmtInt(f.blocks) })));
	}

	function blocksView(blocks, flows, pictures) {
		const box = clear($("blocks"));
		const byFlow = new Map();
		for (const b of blocks) {
			const k = String(b.flow_id);
			if (!byFlow.has(k)) byFlow.set(k, []);
			byFlow.get(k).push(b);
		}
		const order = flows.map((f) => String(f.flow_id)).filter((k) => byFlow.has(k));
		for (const k of byFlow.keys()) if (!order.includes(k)) order.push(k);
		for (const k of order) {
			const pics = (pictures && pictures[k]) || [];
			const sec = el("section", { className: "flow-blocks", dataset: { flowId: k } }, el("h3", { text: "flow #" + k }));
			for (const b of byFlow.get(k).sort((x, y) => Number(x.block_index) - Number(y.block_index))) {
				const pic = pics.find((p) => Number(p.block_index) === Number(b.block_index));
				const picBox = el("div", { className: "pictures" });
				if (pic && pic.cells) {
					try {
						picBox.appendChild(FlowPic.figure(pic.cells));
					} catch (e) {
						picBox.appendChild(el("span", { className: "no-picture", text: e.message }));
					}
				} else {
					picBox.appendChild(el("span", { className: "no-picture", text: "no picture in the collector's answer" }));
				}
				sec.appendChild(el("div", { className: "block-row", dataset: { flowId: k, blockIndex: String(b.block_index),
					class: String(b.class), reason: String(b.reason) } },
				el("div", { className: "block-head" },
					el("div", { className: "block-title", text: "block " + String(b.block_index) + (b.early ? " (early)" : "") }),
					el("div", { className: "muted", text: FP.fmtInt(b.samples) + " packets" }),
					el("div", { className: "class" }, FP.classBadge(b.class, b.reason)),
					el("div", {}, "confidence ", el("strong", { className: "conf", text: FP.fmtConf(b.confidence) }))),
				FP.probBars(b.probs),
				picBox));
			}
			box.appendChild(sec);
		}
	}

	async function upload(ev) {
		ev.preventDefault();
		const file = $("file").files[0];
		const status = $("status");
		FP.showError("");
		if (!file) {
			FP.showError("Choose a capture file first.");
			return;
		}
		const q = new URLSearchParams({ name: file.name, store: $("store").checked ? "1" : "0" });
		$("upload").disabled = true;
		status.textContent = "classifying " + file.name + " (" + FP.fmtBytes(file.size) + ")\u2026";
		document.body.dataset.loaded = "";
		try {
			const d = await api("/api/classify?" + q.toString(), { method: "POST", body: file });
			const lines = d.lines || [];
			const flows = lines.filter((l) => l.type === "flow");
			const blocks = lines.filter((l) => l.type === "block");
			summary(lines);
			flowsTable(flows);
			blocksView(blocks, flows, d.pictures || {});
			document.body.dataset.pictures = String(Object.values(d.pictures || {}).reduce((n, l) => n + l.length, 0));
			for (const id of ["results-card", "blocks-card"]) $(id).hidden = false;
			$("summary-card").hidden = !lines.some((l) => l.type === "summary");
			status.textContent = file.name + ": " + flows.length + " flows, " + blocks.length + " blocks" +
				($("store").checked ? ", stored" : ", not stored");
			document.body.dataset.loaded = "1";
		} catch (e) {
			status.textContent = "";
			FP.showError(file.name + ": " + e.message);
			document.body.dataset.loaded = "error";
		} finally {
			$("upload").disabled = false;
		}
	}

	document.addEventListener("DOMContentLoaded", () => {
		FP.header("/classify");
		$("upload-form").addEventListener("submit", upload);
	});
})();
