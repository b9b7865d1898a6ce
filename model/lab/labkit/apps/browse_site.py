"""Web browsing: headless Chromium, driven through chromium-driver by
Selenium (this file run by /usr/bin/python3 in the client namespace), reads a
local site of a few dozen linked pages served by nginx (TLS with the lab
certificate) in the server namespace, as a person would: it opens a page,
reads it (think times drawn from the session's random numbers), scrolls
(lazy images load), follows a link, sometimes goes back or home.

The site (a shared asset built once: HTML, CSS, JS, web fonts, JPEG/PNG/WebP
images made with ffmpeg, JSON) has realistic page weights: 0.5-3 MB and
20-80 resources a page; pages fetch JSON, add images, send beacons and some
poll a feed.  Its HTML/CSS/JSON name their static and image hosts with
placeholders that nginx rewrites (sub_filter) to the session's addresses:

  browse-h2      HTTP/2: an origin (pages, API), a CDN (static files and
                 images) and an analytics host (tag script, pixels, beacons)
  browse-h1-cdn  HTTP/1.1 (so up to six connections a host), short keep-alive:
                 an origin, a static-file host, an image host and an
                 analytics host

Every server port is "browsing".  Chromium runs with background networking,
component updates, sync, QUIC and Google services off, a fresh profile in the
session's workdir, and trusts only the lab server key
(--ignore-certificate-errors-spki-list).
"""
import base64
import json
import math
import os
import random
import signal
import subprocess
import sys
import time

if __name__ != "__main__":
    from labkit import assets as labassets
    from labkit import nginx
    from labkit.procs import finish
    from labkit.session import stop

PORT = 443
ASSET = "browse-site"
N_PAGES = 40
CATEGORIES = ["news", "tech", "sports", "travel", "food", "science", "culture", "money"]


# ---------------------------------------------------------------- the site

def _words(rng, n=900):
    syl = ["ka", "lo", "mi", "ran", "te", "vo", "su", "pel", "dor", "en", "is", "tra",
           "mon", "qui", "ble", "sta", "ver", "na", "co", "li", "po", "ger", "ul", "tam",
           "ri", "ses", "ab", "fen", "go", "hu", "wy", "ex", "zo", "cre", "dil", "or"]
    out = set()
    while len(out) < n:
        out.add("".join(rng.choice(syl) for _ in range(rng.choice([1, 2, 2, 3, 3, 4]))))
    return sorted(out)


class _Text:
    def __init__(self, rng):
        self.rng = rng
        self.words = _words(rng)
        # Zipf-like word frequencies, as in real text
        self.weights = [1 / (i + 1) for i in range(len(self.words))]

    def sentence(self, lo=6, hi=22):
        w = self.rng.choices(self.words, self.weights, k=self.rng.randint(lo, hi))
        return " ".join(w).capitalize() + self.rng.choice([".", ".", ".", "?", "!"])

    def para(self, lo=2, hi=7):
        return " ".join(self.sentence() for _ in range(self.rng.randint(lo, hi)))

    def title(self):
        return " ".join(self.rng.choices(self.words, self.weights,
                                         k=self.rng.randint(3, 8))).title()

    def ident(self):
        return self.rng.choice(self.words) + self.rng.choice(
            ["", "_", "$"]) + self.rng.choice(self.words).title()


def _js_module(rng, text, size, name):
    """Plausible minified-ish JavaScript of about size bytes (valid syntax)."""
    parts = [f"/*! {name} v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)} */\n"
             "(function(g){'use strict';var M={};"]
    n = sum(len(p) for p in parts)
    k = 0
    while n < size:
        f = text.ident()
        a, b, c = text.ident(), text.ident(), text.ident()
        kind = rng.random()
        if kind < 0.4:
            s = (f"function {f}{k}({a},{b}){{var {c}={a}*{rng.randint(2, 999)}+{b}|0;"
                 f"if({c}>{rng.randint(1, 99999)}){{return M.{text.ident()}({c},"
                 f"'{text.sentence(2, 6)}')}}for(var i=0;i<{b}.length;i++){{{c}^={b}"
                 f".charCodeAt(i)<<{rng.randint(1, 7)}}}return {c}}}M.{f}{k}={f}{k};")
        elif kind < 0.7:
            keys = ",".join(f"{text.ident()}:{rng.randint(0, 99999)}"
                            for _ in range(rng.randint(3, 12)))
            s = f"M.{f}{k}={{{keys}}};"
        elif kind < 0.85:
            strs = ",".join(f"'{text.sentence(2, 8)}'" for _ in range(rng.randint(2, 6)))
            s = f"M.{f}{k}=[{strs}];"
        else:
            s = (f"M.{f}{k}=function({a}){{return new Promise(function(r){{setTimeout("
                 f"function(){{r({a}&&{a}.{text.ident()}||null)}},{rng.randint(0, 50)})}})}};")
        parts.append(s)
        n += len(s)
        k += 1
    parts.append(f"g.{name.replace('-', '_')}=M}})(window);\n")
    return "".join(parts)


APP_JS = r"""
(function(){
  var page = document.body.getAttribute('data-page');
  function add(items){
    var box = document.getElementById('recs'); if(!box) return;
    items.forEach(function(it){
      var a = document.createElement('a'); a.href = it.href; a.className = 'rec';
      var im = document.createElement('img'); im.src = it.img; im.width = 320; im.height = 180;
      im.loading = 'lazy'; a.appendChild(im);
      var s = document.createElement('span'); s.textContent = it.title; a.appendChild(s);
      box.appendChild(a);
    });
  }
  fetch('/api/page-' + page + '.json').then(function(r){return r.json()})
    .then(function(d){add(d.recs)}).catch(function(){});
  function beacon(ev){
    try { navigator.sendBeacon('https://__TAG__/collect', JSON.stringify({p: page, e: ev,
      t: Date.now(), y: window.scrollY, w: innerWidth})); } catch(e) {}
  }
  window.addEventListener('load', function(){ beacon('load'); });
  var seen = 0;
  window.addEventListener('scroll', function(){
    var d = Math.floor(window.scrollY / 1500);
    if (d > seen) { seen = d; beacon('scroll' + d); }
  });
  document.addEventListener('visibilitychange', function(){ beacon('vis'); });
  if (document.body.getAttribute('data-poll')) {
    setInterval(function(){
      fetch('/api/feed.json?t=' + Date.now()).then(function(r){return r.json()})
        .then(function(d){var n=document.getElementById('ticker');
          if(n) n.textContent = d.items[Math.floor(Math.random()*d.items.length)].title;})
        .catch(function(){});
    }, 1000 * Number(document.body.getAttribute('data-poll')));
  }
})();
"""


TAG_JS = r"""
(function(){
  var id = Math.random().toString(36).slice(2);
  function hit(ev){ (new Image()).src = 'https://__TAG__/pixel.gif?id=' + id + '&e=' + ev +
    '&u=' + encodeURIComponent(location.pathname) + '&t=' + Date.now(); }
  hit('pv');
  setTimeout(function(){ hit('engaged'); }, 10000);
  setInterval(function(){ hit('hb'); }, 30000);
})();
"""


def _ffmpeg_images(out_dir, prefix, count, w, h, ext, quality, rng):
    """count images of w x h from several lavfi sources (with texture)."""
    os.makedirs(out_dir, exist_ok=True)
    sources = [f"testsrc2=s={w}x{h}",
               f"mandelbrot=s={w}x{h}:maxiter=120",
               f"life=s={max(16, w // 4)}x{max(16, h // 4)}:mold=10:ratio=0.3,scale={w}:{h}",
               f"cellauto=s={max(16, w // 2)}x{max(16, h // 2)}:rule=110,scale={w}:{h}",
               f"gradients=s={w}x{h}:n=5:speed=0.05"]
    names = []
    per = math.ceil(count / len(sources))
    k = 0
    for i, src in enumerate(sources):
        n = min(per, count - k)
        if n <= 0:
            break
        noise = rng.choice([4, 10, 16, 24])
        # one frame in every few, so images of a source differ
        vf = f"select='not(mod(n\\,7))',noise=alls={noise}:allf=u"
        if ext == "jpg":
            vf += ",format=yuvj420p"
        args = ["nice", "-n", "10", "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
                "-i", src, "-vf", vf, "-fps_mode", "vfr", "-frames:v", str(n),
                "-start_number", str(k)]
        if ext == "jpg":
            args += ["-q:v", str(quality)]
        elif ext == "webp":
            args += ["-c:v", "libwebp", "-quality", str(quality)]
        args += [os.path.join(out_dir, f"{prefix}%04d.{ext}")]
        r = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ffmpeg could not make images: {r.stderr.strip()[-300:]}")
        names += [f"{prefix}{j:04d}.{ext}" for j in range(k, k + n)]
        k += n
    return names


def _build_site(path):
    rng = random.Random(20240611)
    text = _Text(rng)
    img = os.path.join(path, "img")
    pools = {
        "thumb": _ffmpeg_images(os.path.join(img, "t"), "t", 240, 320, 180, "jpg", 5, rng),
        "thumbw": _ffmpeg_images(os.path.join(img, "w"), "w", 80, 480, 270, "webp", 70, rng),
        "content": _ffmpeg_images(os.path.join(img, "c"), "c", 150, 960, 540, "jpg", 4, rng),
        "hero": _ffmpeg_images(os.path.join(img, "h"), "h", 40, 1600, 900, "jpg", 4, rng),
        "icon": _ffmpeg_images(os.path.join(img, "i"), "i", 24, 64, 64, "png", 0, rng),
    }
    logo = _ffmpeg_images(os.path.join(img, "i"), "logo", 1, 240, 64, "png", 0, rng)[0]
    static = os.path.join(path, "static")
    for d in ("css", "js", "fonts"):
        os.makedirs(os.path.join(static, d), exist_ok=True)
    # web fonts: incompressible, as woff2 is
    fonts = []
    for i, fam in enumerate(["Lab Sans", "Lab Sans Bold", "Lab Serif", "Lab Icons"]):
        name = f"f{i}.woff2"
        with open(os.path.join(static, "fonts", name), "wb") as f:
            f.write(b"wOF2" + rng.randbytes(rng.randint(18_000, 70_000)))
        fonts.append((fam, name))
    css = [f"@font-face{{font-family:'{fam}';src:url(https://__STATIC__/static/fonts/{n}) "
           f"format('woff2');font-display:swap}}" for fam, n in fonts]
    css.append("body{font-family:'Lab Sans',sans-serif;margin:0;color:#222}"
               "h1,h2{font-family:'Lab Serif',serif}b,strong{font-family:'Lab Sans Bold'}"
               ".ico{font-family:'Lab Icons'}img{max-width:100%;height:auto}"
               ".rec{display:inline-block;width:320px;margin:4px}")
    while sum(len(c) for c in css) < 90_000:
        sel = f".{text.ident()}-{text.ident()}"
        props = ";".join(f"{rng.choice(['margin', 'padding', 'color', 'border', 'width', 'flex', 'font-size', 'line-height', 'background'])}:"
                         f"{rng.choice(['0', '1px solid #ccc', '#%06x' % rng.randrange(1 << 24), '%dpx' % rng.randint(1, 400), '1.4', 'auto', '50%'])}"
                         for _ in range(rng.randint(2, 9)))
        css.append(f"{sel}{{{props}}}")
        if rng.random() < 0.05:
            css.append(f"{sel}:hover{{background:url(https://__IMG__/img/i/"
                       f"{rng.choice(pools['icon'])})}}")
    with open(os.path.join(static, "css", "site.css"), "w") as f:
        f.write("\n".join(css))
    with open(os.path.join(static, "js", "vendor.js"), "w") as f:
        f.write(_js_module(rng, text, 340_000, "vendor"))
    with open(os.path.join(static, "js", "tag.js"), "w") as f:
        f.write(_js_module(rng, text, 24_000, "tag") + TAG_JS)
    with open(os.path.join(static, "js", "app.js"), "w") as f:
        f.write(_js_module(rng, text, 45_000, "app") + APP_JS)
    api = os.path.join(path, "api")
    os.makedirs(api, exist_ok=True)
    os.makedirs(os.path.join(path, "p"), exist_ok=True)

    pages = [f"/p/{i:02d}.html" for i in range(N_PAGES)]
    titles = [text.title() for _ in pages]
    kinds = ["article"] * 18 + ["gallery"] * 6 + ["list"] * 8 + ["product"] * 8
    rng.shuffle(kinds)
    kinds[0] = "home"
    with open(os.path.join(api, "feed.json"), "w") as f:
        json.dump({"items": [{"title": text.title(), "href": rng.choice(pages)}
                             for _ in range(30)]}, f)
    for i, (url, title, kind) in enumerate(zip(pages, titles, kinds)):
        used = set()

        def pick(pool, n):
            out = []
            for _ in range(n):
                name = rng.choice(pools[pool])
                while name in used and len(used) < len(pools[pool]):
                    name = rng.choice(pools[pool])
                used.add(name)
                out.append(name)
            return out

        sub = {"thumb": "t", "thumbw": "w", "content": "c", "hero": "h", "icon": "i"}

        def img_tag(pool, name, w, h, lazy=False, cls=""):
            return (f'<img src="https://__IMG__/img/{sub[pool]}/{name}" width="{w}" height="{h}"'
                    f'{" loading=" + chr(34) + "lazy" + chr(34) if lazy else ""}'
                    f' alt="{text.title()}" class="{cls}">')

        links = rng.sample([p for p in pages if p != url], rng.randint(10, 18))
        body = []
        n_thumbs = {"home": 24, "article": rng.randint(6, 12), "gallery": rng.randint(24, 40),
                    "list": rng.randint(16, 28), "product": rng.randint(4, 8)}[kind]
        n_content = {"home": 3, "article": rng.randint(2, 6), "gallery": rng.randint(2, 5),
                     "list": rng.randint(0, 2), "product": rng.randint(5, 10)}[kind]
        if kind in ("home", "article", "gallery") or rng.random() < 0.5:
            body.append(img_tag("hero", pick("hero", 1)[0], 1600, 900, cls="hero"))
        body.append(f"<h1>{title}</h1>")
        body.append(f'<p class="meta">{text.sentence(4, 9)} <span id="ticker"></span></p>')
        contents = pick("content", n_content)
        paras = {"home": 6, "article": rng.randint(14, 40), "gallery": 4, "list": 8,
                 "product": rng.randint(6, 14)}[kind]
        for k in range(paras):
            body.append(f"<p>{text.para()}</p>")
            if contents and rng.random() < 0.35:
                body.append(img_tag("content", contents.pop(), 960, 540, lazy=k > 3))
            if rng.random() < 0.2:
                body.append(f"<h2>{text.title()}</h2>")
        for name in contents:
            body.append(img_tag("content", name, 960, 540, lazy=True))
        body.append('<div class="grid">')
        for k in range(n_thumbs):
            pool = "thumbw" if rng.random() < 0.3 else "thumb"
            href = links[k % len(links)]
            body.append(f'<a href="{href}" class="card">'
                        f'{img_tag(pool, pick(pool, 1)[0], 320, 180, lazy=k > 7)}'
                        f"<span>{titles[pages.index(href)]}</span></a>")
        body.append('</div><div id="recs"></div>')
        body.append('<ul class="related">' + "".join(
            f'<li><a href="{h}">{titles[pages.index(h)]}</a></li>' for h in links) + "</ul>")
        # inline page state, as frameworks embed it
        state = json.dumps({"page": i, "kind": kind, "blocks": [
            {"id": rng.randrange(1 << 30), "t": text.sentence(3, 10)}
            for _ in range(rng.randint(60, 600))]})
        head_extra = ""
        chunks = []
        for c in range(rng.randint(1, 3)):
            cname = f"chunk-{i:02d}-{c}.js"
            with open(os.path.join(static, "js", cname), "w") as f:
                f.write(_js_module(rng, text, rng.randint(8_000, 70_000), cname[:-3]))
            chunks.append(cname)
        if rng.random() < 0.4:
            pcss = f"p{i:02d}.css"
            with open(os.path.join(static, "css", pcss), "w") as f:
                f.write("\n".join(f".{text.ident()}{{margin:{rng.randint(0, 40)}px;"
                                  f"color:#{rng.randrange(1 << 24):06x}}}"
                                  for _ in range(rng.randint(200, 1200))))
            head_extra += f'<link rel="stylesheet" href="https://__STATIC__/static/css/{pcss}">'
        icons = "".join(img_tag("icon", n, 32, 32, cls="ico")
                        for n in rng.sample(pools["icon"], rng.randint(4, 9)))
        nav = "".join(f'<a href="{pages[(j * 5 + 1) % N_PAGES]}">{c.title()}</a>'
                      for j, c in enumerate(CATEGORIES))
        poll = f' data-poll="{rng.choice([15, 20, 30])}"' if rng.random() < 0.3 else ""
        html = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{title} | Lab Daily</title>"
            f'<link rel="icon" href="https://__IMG__/img/i/{pools["icon"][0]}">'
            f'<link rel="preload" as="font" type="font/woff2" crossorigin '
            f'href="https://__STATIC__/static/fonts/{fonts[0][1]}">'
            f'<link rel="stylesheet" href="https://__STATIC__/static/css/site.css">{head_extra}'
            f'<script src="https://__STATIC__/static/js/vendor.js" defer></script>'
            f'<script src="https://__STATIC__/static/js/app.js" defer></script>'
            f'<script src="https://__TAG__/static/js/tag.js" async></script>'
            + "".join(f'<script src="https://__STATIC__/static/js/{c}" defer></script>'
                      for c in chunks) +
            f'</head><body data-page="{i:02d}"{poll}><header><a href="/p/00.html">'
            f'<img src="https://__IMG__/img/i/{logo}" width="240" height="64" alt="Lab Daily">'
            f"</a><nav>{nav}</nav>{icons}</header><main>" + "\n".join(body) +
            f"</main><footer><p>{text.para(3, 6)}</p></footer>"
            f"<script>window.__STATE__={state}</script></body></html>\n")
        with open(os.path.join(path, url.lstrip("/")), "w") as f:
            f.write(html)
        recs = [{"href": h, "title": titles[pages.index(h)],
                 "img": f"https://__IMG__/img/t/{rng.choice(pools['thumb'])}"}
                for h in rng.sample(pages, rng.randint(4, 8))]
        with open(os.path.join(api, f"page-{i:02d}.json"), "w") as f:
            json.dump({"page": i, "recs": recs,
                       "comments": [{"user": text.ident(), "text": text.para(1, 3)}
                                    for _ in range(rng.randint(0, 40))]}, f)
    with open(os.path.join(path, "index.html"), "w") as f:
        f.write('<!DOCTYPE html><meta http-equiv="refresh" content="0;url=/p/00.html">\n')


def site_asset(assets_dir):
    return labassets.ensure(assets_dir, ASSET, _build_site)


# ---------------------------------------------------------------- the server

# The http block after labkit.nginx's HEAD: shared settings, then a server
# per address (NGINX_SERVER).
NGINX_HTTP = """\
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout {keepalive};
    gzip on;
    gzip_comp_level 5;
    gzip_min_length 512;
    gzip_types text/css application/javascript application/json image/svg+xml;
    sub_filter_types text/css application/javascript application/json;
    sub_filter_once off;
    sub_filter 'https://__STATIC__' '{static}';
    sub_filter 'https://__IMG__' '{img}';
    sub_filter 'https://__TAG__' '{tag}';
    http2_idle_timeout {keepalive};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:lab:1m;
    root {site};
    index index.html;
"""

NGINX_SERVER = """\
    server {{
        listen {ip}:{port} ssl{h2};
        server_name _;
        location /static/ {{ expires 7d; add_header Access-Control-Allow-Origin *; }}
        location /img/ {{ expires 7d; add_header Access-Control-Allow-Origin *; }}
        location /api/ {{ expires -1; add_header Access-Control-Allow-Origin *; }}
        location = /collect {{ return 204; }}
        location = /pixel.gif {{ expires -1; empty_gif; }}
        location / {{ add_header Cache-Control "no-cache"; }}
    }}
"""


def start_nginx(env, site, hosts, http2, keepalive):
    """nginx on every server address; hosts: {'static': ip, 'img': ip, 'tag': ip}
    (None: the origin itself)."""
    tls = labassets.tls(env.assets, env.server_ips)
    prefix = nginx.prefix(env)

    def url(ip):
        return f"https://{ip}" if ip else ""

    text = NGINX_HTTP.format(keepalive=keepalive, static=url(hosts["static"]),
                             img=url(hosts["img"]), tag=url(hosts["tag"]), cert=tls["cert"],
                             key=tls["key"], site=site)
    for ip in env.server_ips:
        text += NGINX_SERVER.format(ip=ip, port=PORT, h2=nginx.h2(http2))
    text += "}\n"
    return nginx.start(env, prefix, text, PORT, connections=1024), tls


def spki_hash(cert):
    """base64 SHA-256 of the certificate's public key (for Chromium)."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"], check=True,
                         stdout=subprocess.PIPE).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         check=True, stdout=subprocess.PIPE).stdout
    import hashlib
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def settle_addresses(env, seconds=5):
    """Wait until the client namespace's IPv6 link-local addresses finish
    duplicate address detection: Chromium takes that address change for a
    network change and closes every connection it has open."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = env.run_client(["ip", "-6", "addr", "show", "tentative"], check=False)
        if not r.stdout.strip():
            return
        time.sleep(0.2)


# ---------------------------------------------------------------- the drivers

class _Browse:
    CLASS = "browsing"
    PACKAGES = ["chromium", "chromium-driver", "python3-selenium", "nginx", "ffmpeg",
                "openssl", "python3"]
    HTTP2 = True
    KEEPALIVE = 65

    @staticmethod
    def prepare(assets_dir):
        """Build the shared site ahead of sessions."""
        site_asset(assets_dir)

    def hosts(self, env):
        """The static, image and analytics hosts' addresses (HOSTS: their
        indexes in env.server_ips)."""
        return {k: env.server_ips[i] for k, i in zip(("static", "img", "tag"), self.HOSTS)}

    def run(self, env):
        rng = env.rng
        site = site_asset(env.assets)
        srv, tls = start_nginx(env, site, self.hosts(env), self.HTTP2, self.KEEPALIVE)
        agent = None
        try:
            settle_addresses(env)
            cfg = {"origin": f"https://{env.server_ip}", "seed": rng.randrange(1 << 31),
                   "seconds": round(env.remaining(), 1), "spki": spki_hash(tls["cert"]),
                   "profile": os.path.join(env.workdir, "chromium"),
                   "pages": N_PAGES}
            agent = env.client(["/usr/bin/python3", os.path.abspath(__file__), "agent",
                                json.dumps(cfg)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, HOME=env.workdir))
            out = finish(agent, "browser session", env.remaining() + 20, 15)
            env.log(f"{self.NAME}: {out}")
        finally:
            stop([agent, srv], grace=8)
        return [{"proto": "tcp", "port": PORT, "label": "browsing"}]


class BrowseH2(_Browse):
    NAME = "browse-h2"
    SERVER_IPS = 3
    HTTP2 = True
    KEEPALIVE = 65
    HOSTS = (1, 1, 2)          # a CDN for static files and images, analytics


class BrowseH1Cdn(_Browse):
    NAME = "browse-h1-cdn"
    SERVER_IPS = 4
    HTTP2 = False
    KEEPALIVE = 15
    HOSTS = (1, 2, 3)          # static files, images and analytics apart


APPS = [BrowseH2, BrowseH1Cdn]


# ---------------------------------------------------------------- the person

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-quic", "--disable-extensions", "--disable-domain-reliability",
    "--disable-client-side-phishing-detection", "--disable-breakpad", "--no-pings",
    "--safebrowsing-disable-auto-update", "--metrics-recording-only",
    "--password-store=basic", "--use-mock-keychain", "--disable-dev-shm-usage",
    "--disable-features=OptimizationHints,Translate,MediaRouter,DialMediaRouteProvider,"
    "AutofillServerCommunication,CertificateTransparencyComponentUpdater,"
    "InterestFeedContentSuggestions,PrivacySandboxSettings4,NetworkTimeServiceQuerying",
]


def agent(cfg):
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service

    rng = random.Random(cfg["seed"])
    deadline = time.monotonic() + cfg["seconds"]
    origin = cfg["origin"]
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in CHROMIUM_ARGS:
        opts.add_argument(a)
    w, h = rng.choice([(1366, 768), (1920, 1080), (1536, 864), (1440, 900), (1280, 720)])
    opts.add_argument(f"--window-size={w},{h}")
    opts.add_argument(f"--user-data-dir={cfg['profile']}")
    opts.add_argument(f"--ignore-certificate-errors-spki-list={cfg['spki']}")
    opts.add_argument("--user-agent=Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                      "(KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stats = {"pages": 0, "back": 0, "timeouts": 0, "scrolls": 0}
    history = []

    def left():
        return deadline - time.monotonic()

    def visit(url):
        driver.set_page_load_timeout(max(2, min(30, left())))
        try:
            driver.get(url)
        except TimeoutException:
            stats["timeouts"] += 1
        stats["pages"] += 1
        history.append(url)

    def read_page():
        """Think time on a page, scrolling now and then."""
        think = min(left(), max(1.5, min(60, rng.lognormvariate(math.log(9), 0.8))))
        end = time.monotonic() + think
        while time.monotonic() < end:
            time.sleep(min(end - time.monotonic(), rng.uniform(0.8, 4.0)))
            if time.monotonic() < end and rng.random() < 0.7:
                try:
                    driver.execute_script("window.scrollBy(0, arguments[0])",
                                          rng.randint(200, 1400) * rng.choice([1, 1, 1, -1]))
                    stats["scrolls"] += 1
                except WebDriverException:
                    pass

    try:
        # arrive at the home page, or at an article from a link elsewhere
        first = "/p/00.html" if rng.random() < 0.5 else f"/p/{rng.randrange(cfg['pages']):02d}.html"
        visit(origin + first)
        while left() > 1:
            read_page()
            if left() <= 1:
                break
            r = rng.random()
            if r < 0.1 and len(history) > 1:
                stats["back"] += 1
                driver.set_page_load_timeout(max(2, min(30, left())))
                try:
                    driver.back()
                except TimeoutException:
                    stats["timeouts"] += 1
                history.pop()
                continue
            if r < 0.17:
                visit(origin + "/p/00.html")
                continue
            try:
                hrefs = driver.execute_script(
                    "return Array.from(document.querySelectorAll('a[href]'))"
                    ".map(a => a.href).filter(h => h.indexOf(location.origin) === 0)")
            except WebDriverException:
                hrefs = []
            hrefs = sorted(set(hrefs) - {driver.current_url})
            visit(rng.choice(hrefs) if hrefs else origin + "/p/00.html")
    finally:
        try:
            driver.quit()
        except Exception:
            pass
        print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "agent":
        agent(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: browse_site.py agent CONFIG-JSON")
