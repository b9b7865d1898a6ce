// SPDX-License-Identifier: MIT
// flow.js - one flow (?agent_id=&run_id=&flow_id=): its verdict, its
// counters, and the block timeline with each block's class, probabilities
// and FlowPic (from the block verdict's cells, when its agent sent them).
"use strict";

(() => {
	const { el, $, api, clear } = FP;

	function verdictData(v) {
		return { key: FP.verdictKey(v), seq: String(v.seq), stage: String(v.stage), class: String(v.class),
			reason: String(v.reason), confidence: String(v.confidence), blockIndex: String(v.block_index) };
	}

	function renderFinal(f, blocks) {
		const box = clear($("final"));
		if (!f) {
			box.appendChild(el("p", { className: "note",
				text: blocks.length ? "No flow verdict stored (yet): the flow is open, or its agent sends block verdicts only."
					: "No verdict of this flow is stored." }));
			return;
		}
		Object.assign(box.dataset, verdictData(f));
		box.appendChild(el("div", { className: "big" }, FP.classBadge(f.class, f.reason)));
		box.appendChild(el("p", {}, "confidence ", el("strong", { className: "conf", text: FP.fmtConf(f.confidence) }),
			", from " + String(f.blocks) + " block" + (Number(f.blocks) === 1 ? "" : "s")));
		box.appendChild(FP.probBars(f.probs));
	}

	function renderCounters(f, blocks) {
		const tb = clear($("counters").tBodies[0]);
		const v = f || blocks[blocks.length - 1];
		if (!v) return;
		// Without the flow verdict, the flow so far is the sum of its blocks.
		const sum = (k) => f ? Number(f[k]) : blocks.reduce((a, b) => a + Number(b[k] || 0), 0);
		const first = blocks.length ? FP.big(blocks[0].start_ns) : FP.big(v.start_ns);
		const rows = [
			["agent", v.agent_id], ["host", v.host], ["interface", v.interface], ["run", v.run_id],
			["flow", v.flow_id], ["direction", v.direction],
			["source", FP.endpoint(v.src, v.sport)], ["destination", FP.endpoint(v.dst, v.dport)], ["protocol", v.proto],
			["start (UTC)", FP.fmtTime(f ? f.start_ns : first)],
			["duration", f ? FP.fmtDuration(f.duration_ns) : "-"],
			["packets forward", FP.fmtInt(sum("packets_fwd"))], ["packets reverse", FP.fmtInt(sum("packets_rev"))],
			["payload bytes forward", FP.fmtInt(sum("payload_bytes_fwd"))],
			["payload bytes reverse", FP.fmtInt(sum("payload_bytes_rev"))],
			["blocks stored", String(blocks.length)],
			["model", String(v.model) + " " + String(v.model_version)],
			["received (UTC)", FP.fmtTime(v.received_ns)],
		];
		for (const [k, val] of rows)
			tb.appendChild(el("tr", { dataset: { name: k } }, el("th", { text: k }), el("td", { text: val })));
	}

	function renderBlocks(blocks) {
		const box = clear($("blocks"));
		if (!blocks.length) {
			box.appendChild(el("p", { className: "note", text: "No block verdict of this flow is stored." }));
			return;
		}
		const t0 = FP.big(blocks[0].start_ns);
		for (const b of blocks) {
			const off = Number(FP.big(b.start_ns) - t0) / 1e9;
			const pic = el("div", { className: "pictures" });
			if (b.cells) {
				try {
					pic.appendChild(FlowPic.figure(b.cells));
				} catch (e) {
					pic.appendChild(el("span", { className: "no-picture", text: e.message }));
				}
			} else {
				pic.appendChild(el("span", { className: "no-picture",
					text: "no picture stored (its agent runs without --send-pictures)" }));
			}
			box.appendChild(el("div", { className: "block-row", dataset: verdictData(b) },
				el("div", { className: "block-head" },
					el("div", { className: "block-title", text: "block " + String(b.block_index) + " (" + String(b.stage) + ")" }),
					el("div", { className: "muted", text: FP.fmtTime(b.start_ns) + " UTC, +" + off.toFixed(1) + " s, " +
						FP.fmtDuration(b.duration_ns) }),
					el("div", { className: "muted", text: FP.fmtInt(Number(b.packets_fwd) + Number(b.packets_rev)) + " packets" }),
					el("div", { className: "class" }, FP.classBadge(b.class, b.reason)),
					el("div", {}, "confidence ", el("strong", { className: "conf", text: FP.fmtConf(b.confidence) }))),
				FP.probBars(b.probs),
				pic));
		}
	}

	async function load() {
		const q = new URLSearchParams(location.search);
		const id = { agent_id: q.get("agent_id") || "", run_id: q.get("run_id") || "", flow_id: q.get("flow_id") || "" };
		if (!id.agent_id || !/^\d+$/.test(id.run_id) || !/^\d+$/.test(id.flow_id))
			throw new Error("This page needs ?agent_id=ID&run_id=N&flow_id=N (follow a link of the flows page).");
		const d = await api("/api/flow?" + new URLSearchParams(id).toString());
		const blocks = d.blocks || [];
		const v = d.final || blocks[0];
		if (v) {
			$("flow-title").textContent = "Flow #" + String(v.flow_id) + ": " + FP.endpoint(v.src, v.sport) + " \u2192 " +
				FP.endpoint(v.dst, v.dport) + " " + String(v.proto);
			document.title = "flowpic: flow " + String(v.flow_id);
			const back = new URLSearchParams({ agent: String(v.agent_id), stage: "all", addr: String(v.src), port: String(v.sport) });
			$("back").href = "/flows?" + back.toString();
		}
		renderFinal(d.final, blocks);
		renderCounters(d.final, blocks);
		renderBlocks(blocks);
		document.body.dataset.loaded = "1";
	}

	document.addEventListener("DOMContentLoaded", () => {
		FP.header("");
		load().catch((e) => FP.showError(e.message));
	});
})();
