"""Speech for the voip drivers: a two-party phone conversation spoken by
espeak-ng, as two tracks (the caller's microphone and the callee's), each
silent (faint room noise) while the other party talks, built once as an
asset (labkit.assets.ensure) at 16 kHz, mono, 16-bit; a session resamples
its stretch to the rate its codec needs (8 kHz for G.711, 48 kHz for Opus).

A session cuts its own stretch of the tracks from an offset drawn from
env.rng (session_tracks), so calls differ in what is being said when.
No APPS here: this module only serves voip_*.py drivers.
"""
import array
import os
import random
import subprocess
import wave

from labkit import assets as lab_assets

ASSET = "voip-speech"
RATE = 16000

# Two people on the phone; "A" calls, "B" answers.  Several topics, so the
# tracks run for minutes without repeating.
DIALOGUE = [
    ("B", "Hello?"),
    ("A", "Hi, it's me. Do you have a minute?"),
    ("B", "Sure, I was just making some coffee. What's up?"),
    ("A", "I wanted to talk about the trip next weekend. Are we still driving up on Friday?"),
    ("B", "I think so. My sister said she can take the dog, so Friday afternoon works."),
    ("A", "Great. I was thinking we could leave around three, before the traffic gets bad."),
    ("B", "Three is a bit early for me. I have a meeting until half past three."),
    ("A", "Okay, how about four then? We would still get there before dark."),
    ("B", "Four is fine. Should I bring anything?"),
    ("A", "Maybe the camping chairs, and the small cooler if you still have it."),
    ("B", "I do. I'll put it in the car tonight so I don't forget."),
    ("A", "Perfect. And I booked the cabin near the lake, the one we saw last year."),
    ("B", "Oh nice, the one with the big porch? I loved that place."),
    ("A", "Yes, that one. It was the last weekend they had free."),
    ("B", "Lucky. How much was it in the end?"),
    ("A", "About two hundred for the two nights. We can split it later."),
    ("B", "Sounds good. Send me the details when you get a chance."),
    ("A", "Will do. By the way, did you hear back about the job?"),
    ("B", "Not yet. They said they would call this week, but nothing so far."),
    ("A", "Hmm. I'm sure it went well. You prepared a lot for that interview."),
    ("B", "I hope so. The second part was hard. They asked a lot about budgets."),
    ("A", "You know that stuff better than anyone. Don't worry too much."),
    ("B", "Thanks. I'll let you know as soon as I hear something."),
    ("A", "Please do. Oh, and mom asked if we are coming for dinner on Sunday."),
    ("B", "This Sunday? I thought it was the one after."),
    ("A", "No, she moved it. Uncle Peter is visiting, so she wants everyone there."),
    ("B", "Right, I forgot he was coming. What time?"),
    ("A", "She said around six. I can pick you up on the way if you want."),
    ("B", "That would be great. My car is going to the garage on Saturday anyway."),
    ("A", "What's wrong with it this time?"),
    ("B", "The brakes are making that noise again. I don't want to risk it on the highway."),
    ("A", "Good idea. Take mine on Friday then, it has more space anyway."),
    ("B", "Are you sure? I don't mind driving."),
    ("A", "Yes, it's fine. Just fill it up before we come back."),
    ("B", "Deal. Hey, did you finish that book I lent you?"),
    ("A", "Almost. I have maybe fifty pages left. The ending is getting really tense."),
    ("B", "Wait until you see what happens with the brother. I won't say anything."),
    ("A", "Don't tell me! I'll finish it this week, I promise."),
    ("B", "Then you can bring it on the trip and we can talk about it."),
    ("A", "Sounds like a plan. What about food for the weekend?"),
    ("B", "I can do a big shop on Thursday. Pasta, some vegetables, things for breakfast."),
    ("A", "And something for the grill. They have a fire pit at the cabin."),
    ("B", "Sausages and corn, then. And marshmallows, obviously."),
    ("A", "Obviously. I'll get the drinks and the charcoal."),
    ("B", "Should we ask Sam and Maria if they want to come for a day?"),
    ("A", "Maybe Saturday? The cabin only sleeps two, but they could come for lunch."),
    ("B", "I'll text Maria tonight. She has been wanting to go hiking for ages."),
    ("A", "There is a trail around the lake, about ten kilometers. Not too hard."),
    ("B", "That's perfect for them. Sam hurt his knee in the spring, so nothing too steep."),
    ("A", "Right. We can do the short loop if he is not feeling it."),
    ("B", "Okay. Let me check the weather. Hang on a second."),
    ("B", "It says sunny on Saturday, some rain on Sunday morning."),
    ("A", "That's not bad. We can leave a bit later on Sunday and miss the rain."),
    ("B", "Good. We need to be back by five for dinner at mom's anyway."),
    ("A", "True. So we leave the cabin around one, stop for lunch somewhere."),
    ("B", "There was that little diner on the way, with the pies."),
    ("A", "Yes! The apple pie there was amazing. We have to stop there."),
    ("B", "Agreed. Okay, I think we have everything. Anything else?"),
    ("A", "I don't think so. Oh, can you send me that photo from last year, at the lake?"),
    ("B", "The one with the canoe? Sure, I'll find it tonight."),
    ("A", "Thanks. I want to print it for mom, she asked about it."),
    ("B", "That's sweet. She'll love it."),
    ("A", "Okay, I have to go, my other call is starting in a few minutes."),
    ("B", "No problem. Talk to you tomorrow?"),
    ("A", "Yes, I'll call you after work. Bye!"),
    ("B", "Bye, take care."),
    ("A", "Hey, sorry, it's me again. I forgot to ask you something."),
    ("B", "No worries, what is it?"),
    ("A", "Do you still have the number of that plumber you used in March?"),
    ("B", "I think so, let me look. Is something leaking?"),
    ("A", "The kitchen sink. It started dripping yesterday and now it is worse."),
    ("B", "Found it. His name is Martin. I'll send it to you by message."),
    ("A", "Thank you, you're a lifesaver."),
    ("B", "He is a bit expensive, but he is quick and he cleans up after himself."),
    ("A", "That's all I need right now. The whole floor is wet."),
    ("B", "Put a towel under it and turn off the valve under the sink."),
    ("A", "I already did. Okay, I'll call him now. Thanks again."),
    ("B", "Good luck. Let me know how it goes."),
]

VOICES = {"A": ("en-us+m3", 160, 45), "B": ("en-gb+f3", 168, 62)}


def _speak(text, voice, speed, pitch, out22, out16):
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                    "-w", out22, text], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    subprocess.run(["sox", out22, "-r", str(RATE), "-c", "1", "-b", "16", out16,
                    "gain", "-n", "-3"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with wave.open(out16, "rb") as w:
        data = array.array("h")
        data.frombytes(w.readframes(w.getnframes()))
    return data


def _write(path, samples, rate):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def build(path):
    """Asset builder: tracks a.wav (caller) and b.wav (callee) at RATE."""
    rng = random.Random(20240601)     # the asset is fixed; sessions vary the offset
    tmp = os.path.join(path, "tmp")
    os.makedirs(tmp, exist_ok=True)
    tracks = {"A": array.array("h"), "B": array.array("h")}

    def silence(seconds):
        n = int(seconds * RATE)
        z = array.array("h", bytes(2 * n))
        for t in tracks.values():
            t.extend(z)

    silence(1.0)
    for rnd in range(2):              # twice through, spoken a little differently
        for i, (who, text) in enumerate(DIALOGUE):
            voice, speed, pitch = VOICES[who]
            speed += rng.randint(-15, 15)
            pitch += rng.randint(-6, 6)
            seg = _speak(text, voice, speed, pitch, os.path.join(tmp, "u22.wav"),
                         os.path.join(tmp, "u16.wav"))
            other = "B" if who == "A" else "A"
            tracks[who].extend(seg)
            tracks[other].extend(array.array("h", bytes(2 * len(seg))))
            # A pause inside a turn is short; between turns longer; sometimes
            # someone thinks for a while.
            nxt = DIALOGUE[(i + 1) % len(DIALOGUE)][0]
            gap = rng.uniform(0.25, 0.7) if nxt == who else rng.uniform(0.4, 1.6)
            if rng.random() < 0.08:
                gap += rng.uniform(1.5, 4.0)
            silence(gap)
    for who, samples in tracks.items():
        raw = os.path.join(tmp, f"{who}.wav")
        _write(raw, samples, RATE)
        dur = len(samples) / RATE
        noise = os.path.join(tmp, f"{who}-noise.wav")
        subprocess.run(["sox", "-n", "-r", str(RATE), "-c", "1", "-b", "16", noise,
                        "synth", f"{dur:.3f}", "pinknoise", "vol", "0.001"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["sox", "-m", "-v", "1", raw, "-v", "1", noise, "-b", "16",
                        os.path.join(path, f"{who.lower()}.wav")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for name in os.listdir(tmp):
        os.unlink(os.path.join(tmp, name))
    os.rmdir(tmp)


def speech(assets):
    return lab_assets.ensure(assets, ASSET, build)


def duration(path):
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def session_tracks(env, rate, seconds, channels=1):
    """Cut the caller's and callee's tracks for one session into env.workdir:
    (caller_wav, callee_wav), `seconds` long, from an offset drawn from env.rng."""
    base = speech(env.assets)
    out = []
    total = duration(os.path.join(base, "a.wav"))
    offset = env.rng.uniform(0, max(0.0, total - seconds - 1))
    for who in ("a", "b"):
        src = os.path.join(base, f"{who}.wav")
        dst = os.path.join(env.workdir, f"speech-{who}-{rate}-{channels}.wav")
        args = ["sox", src, "-r", str(rate), "-c", str(channels), "-b", "16", dst,
                "trim", f"{offset:.3f}", f"{seconds:.3f}"]
        # Longer than the tracks (only for very long sessions): loop them.
        if offset + seconds > total:
            args = ["sox", src, src, src, "-r", str(rate), "-c", str(channels), "-b",
                    "16", dst, "trim", f"{offset:.3f}", f"{seconds:.3f}"]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        out.append(dst)
    return tuple(out)
