// SPDX-License-Identifier: MIT
// login.js - say so when the collector sent us back here with ?failed=1.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
	if (new URLSearchParams(location.search).get("failed") === "1")
		document.getElementById("login-failed").hidden = false;
});
