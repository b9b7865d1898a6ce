// SPDX-License-Identifier: MIT
// flowpic.js - draw a block's FlowPic from its sparse cells as `flowpic
// render` does (row 0, the smallest packets, at the bottom; column 0, the
// block's start, at the left; 0 packets white, then log(1 + count) / log(256)
// of the same grey range), on a <canvas>, exported to an <img> (a data: URL).
"use strict";

const FlowPic = (() => {
	const INK_MAX = 192; // cli/png_render.c: 1 packet -> grey 168, 255 -> black
	const lut = new Uint8Array(256);
	lut[0] = 255;
	for (let c = 1; c < 256; c++) lut[c] = Math.round(INK_MAX * (1 - Math.log1p(c) / Math.log(256)));

	// What a plane holds: split pictures (dirs 3, two planes) are forward
	// then reverse; one plane is both directions unless dirs says 1 or 2.
	function planeName(cells, p) {
		if (Number(cells.planes) === 2) return p === 0 ? "forward" : "reverse";
		const dirs = Number(cells.dirs);
		return dirs === 1 ? "forward" : dirs === 2 ? "reverse" : "both directions";
	}

	// cells: {rows, cols, planes, window_ns, index: [...], count: [...]}; flat
	// index (plane * rows + row) * cols + col.  Returns one <img> per plane.
	function images(cells, scale = 4) {
		const rows = Number(cells.rows), cols = Number(cells.cols), planes = Math.max(1, Number(cells.planes) || 1);
		if (!(rows > 0 && cols > 0 && rows <= 2048 && cols <= 2048 && planes <= 4))
			throw new Error("picture of " + rows + " x " + cols + " x " + planes + ": not drawable");
		const dense = new Uint8Array(planes * rows * cols);
		const idx = cells.index || [], cnt = cells.count || [];
		for (let k = 0; k < idx.length && k < cnt.length; k++) {
			const i = Number(idx[k]);
			if (i >= 0 && i < dense.length) dense[i] = Math.min(255, Number(cnt[k]));
		}
		const s = Math.max(1, Math.min(scale, Math.floor(1024 / Math.max(rows, cols)) || 1));
		const out = [];
		for (let p = 0; p < planes; p++) {
			const canvas = document.createElement("canvas");
			canvas.width = cols * s;
			canvas.height = rows * s;
			const ctx = canvas.getContext("2d");
			const img = ctx.createImageData(canvas.width, canvas.height);
			for (let row = 0; row < rows; row++) {
				const y0 = (rows - 1 - row) * s; // size bin 0 is the bottom band
				for (let col = 0; col < cols; col++) {
					const g = lut[dense[(p * rows + row) * cols + col]];
					for (let dy = 0; dy < s; dy++) {
						let o = ((y0 + dy) * canvas.width + col * s) * 4;
						for (let dx = 0; dx < s; dx++, o += 4) {
							img.data[o] = g;
							img.data[o + 1] = g;
							img.data[o + 2] = g;
							img.data[o + 3] = 255;
						}
					}
				}
			}
			ctx.putImageData(img, 0, 0);
			const im = document.createElement("img");
			im.className = "flowpic";
			im.width = canvas.width;
			im.height = canvas.height;
			im.dataset.plane = String(p);
			im.alt = "FlowPic, " + planeName(cells, p) +
				" (" + rows + " size bins x " + cols + " time bins)";
			im.src = canvas.toDataURL("image/png");
			out.push(im);
		}
		return out;
	}

	// A figure: the planes side by side with their captions.
	function figure(cells, scale) {
		const fig = FP.el("div", { className: "flowpic-fig" });
		images(cells, scale).forEach((im, p) => {
			const label = planeName(cells, p);
			fig.appendChild(FP.el("figure", {}, im, FP.el("figcaption", { text: label })));
		});
		return fig;
	}

	return { images, figure };
})();
