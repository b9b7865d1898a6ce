"""Chat text and timing for the chat drivers (chat_xmpp, chat_irc): what
people type and how long it takes them.  No APPS here.

The client scripts of those drivers run in the client namespace and import
this module (labkit.procs.script puts the lab's folder on sys.path); every
function that draws takes the random.Random it draws from, seeded from the
session's env.rng.  log() and sleep_until() are the scripts' progress lines
and pacing.
"""
import argparse
import asyncio
import math
import time

T0 = time.monotonic()


def log(*args):
    """A progress line of a client script: seconds since it started, then args."""
    print(f"{time.monotonic() - T0:7.1f}", *args, flush=True)


async def sleep_until(seconds, deadline):
    """Sleep seconds, but not past deadline (monotonic time)."""
    await asyncio.sleep(max(0.0, min(seconds, deadline - time.monotonic())))


def client_args(**more):
    """A client script's arguments: the server's --server, --port and --ca,
    the --users (JSON), --seed and --seconds, and more (name=type)."""
    ap = argparse.ArgumentParser()
    opts = dict({"server": str, "port": int, "ca": str, "users": str, "seed": int,
                 "seconds": float}, **more)
    for name, kind in opts.items():
        ap.add_argument(f"--{name}", type=kind)
    return ap.parse_args()

SHORT = [
    "ok", "okay", "lol", "haha", "hahaha yes", "sure", "yep", "nope", "yes!", "no way",
    "omw", "brb", "back", "thanks!", "thx", "np", "sounds good", "wait what", ":)", ":D",
    "true", "same", "nice", "cool", "agreed", "good point", "oh no", "hmm", "right",
    "let me check", "one sec", "done", "perfect", "see you", "gn", "morning!", "+1",
    "makes sense", "exactly", "not sure", "maybe later", "on it", "yeah", "ugh", "wow",
]

SENTENCES = [
    "Did you see the message from the landlord this morning?",
    "I'm running about ten minutes late, sorry.",
    "The build failed again on the test machine, looking into it now.",
    "Can you send me the slides from yesterday?",
    "We should book the restaurant before Friday, it fills up fast.",
    "I think the meeting got moved to three.",
    "Just got home, what a day.",
    "The new episode is out, no spoilers please!",
    "Anyone up for lunch at the place around the corner?",
    "I pushed the fix, can you review it when you have a moment?",
    "My train is delayed again, typical.",
    "Do we still need milk or did you already buy some?",
    "The weather looks great for the weekend.",
    "I'll call you after work, probably around six.",
    "Has anyone heard back from the recruiter?",
    "That video you sent was hilarious.",
    "I can't find my keys anywhere, did I leave them at your place?",
    "The deadline is next Thursday, not this one.",
    "Let's do a quick call tomorrow morning to sort it out.",
    "I'm at the shop, need anything?",
    "The printer on the second floor is broken again.",
    "Happy birthday!! Hope you have a great day.",
    "Can we move our chat to after lunch?",
    "I finally finished the report, sending it now.",
    "The concert tickets go on sale at ten tomorrow.",
    "Traffic is terrible, I'll be there in twenty minutes.",
    "What was the name of that book you recommended?",
    "Remember to bring the charger this time.",
    "I'm not sure that's the right approach, but let's try it.",
    "Did the package arrive? The tracking says delivered.",
    "We're out of coffee at the office, this is an emergency.",
    "Let me know when you're free, no rush.",
    "The kids loved the park, we should go again.",
    "I'll be offline for a bit, dentist appointment.",
    "Can someone explain why the config changed overnight?",
    "That's a great idea, let's put it on the list for next week.",
    "Dinner at eight still works for me.",
    "I just sent you the address.",
    "The server has been slow all afternoon, anyone else notice?",
    "Is it okay if I bring a friend on Saturday?",
]

WORDS = ("the a to and of it that is for on you this we with be have just so but not are "
         "was can do at if about all get like what my will one out up time there when "
         "think know good now some people more see other could work really need go "
         "make back also way well even want because any these give day most us thing "
         "tomorrow tonight later week plan idea call meeting coffee train home office "
         "weekend project review email file photo link game dinner lunch weather").split()


def message(rng, style="im"):
    """One chat message: mostly short, sometimes a few sentences, rarely a long
    one.  style "irc": shorter lines (long texts go to a paste site there)."""
    r = rng.random()
    if style == "irc":
        if r < 0.5:
            return rng.choice(SHORT)
        if r < 0.95:
            return rng.choice(SENTENCES)
        return " ".join(rng.choice(SENTENCES) for _ in range(2))
    if r < 0.40:
        return rng.choice(SHORT)
    if r < 0.85:
        s = rng.choice(SENTENCES)
        if rng.random() < 0.3:
            s += " " + rng.choice(SHORT)
        return s
    if r < 0.97:
        return " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 3)))
    # A long one: a story, a pasted paragraph.
    n = rng.randint(60, 220)
    words = [rng.choice(WORDS) for _ in range(n)]
    out, i = [], 0
    while i < n:
        k = rng.randint(6, 16)
        sent = " ".join(words[i:i + k])
        out.append(sent[:1].upper() + sent[1:] + rng.choice([".", ".", "!", "?"]))
        i += k
    return " ".join(out)


def typing_seconds(rng, text, cps):
    """How long typing `text` takes at `cps` characters a second, with jitter;
    a long text is partly pasted or dictated, so it takes at most a minute."""
    t = max(0.4, len(text) / cps * rng.uniform(0.7, 1.4))
    return min(t, rng.uniform(20.0, 60.0))


def think_seconds(rng, lo=0.8, median=3.0, hi=30.0):
    """Reading and thinking before answering: log-normal, clipped."""
    return min(hi, max(lo, rng.lognormvariate(math.log(median), 0.7)))


def idle_seconds(rng, median=8.0, hi=60.0):
    """A lull between two exchanges."""
    return min(hi, max(2.0, rng.lognormvariate(math.log(median), 0.9)))


STATUS = ["At work", "Busy", "Out for lunch", "On the phone", "Commuting", "Back soon",
          "In a meeting", "Working from home", "Gym", "Do not disturb please"]
