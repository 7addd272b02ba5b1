// Alarm sound: IEC 60601-1-8 auditory alarm signals made with Web Audio (reference/alarm-standards.md §1.3).
//
//   high        10 pulses, 3 + 2, pause, 3 + 2, pulse td 100 ms, spacing x 75 ms (3rd->4th: 2x + td),
//               5th->6th 0.6 s; the burst repeats 3 s after its last pulse (tb 2.5-15 s)
//   medium      3 pulses, td 180 ms, spacing y 200 ms; repeats 5 s after (tb 2.5-30 s)
//   low         2 pulses, td 180 ms, spacing y 200 ms; repeats 16 s after (tb > 15 s)
//   connection  the high burst on the "equipment failure" notes C5 C4 C4 / C5 C4 (IEC 60601-1-8:2006 Annex F),
//               so that "this screen cannot show alarms" sounds urgent and unlike a patient's alarm
// Every pulse: fundamental C4 (262 Hz; connection C5/C4) with harmonics 2-6 (523-1570 Hz, within 12 dB of the
// fundamental) from one PeriodicWave, rise and fall 15 % of td.
//
// Browsers let a page start audio only after a user gesture: `state` is "off" until an AudioContext is
// running, "on" when it is, "blocked" when this browser cannot play (no Web Audio, or it stays suspended
// after a tap). For tests, window.__bedsideAudio = {state, pattern, pulses, log: [{t, f, td, pattern}, ...]}
// (pulses: how many have started; log: the last 60, t in AudioContext seconds).

const C4 = 261.63;
const C5 = 523.25;

function burst(onsets, td, tb, freqs) {
  const end = onsets[onsets.length - 1] + td;
  return { pulses: onsets.map((at, i) => ({ at, f: freqs ? freqs[i] : C4 })), td, period: end + tb };
}

function highOnsets(td, x, gap56) {
  const out = [0, td + x, 2 * (td + x)];
  out.push(out[2] + td + 2 * x + td); // pulse 3 -> 4: 2x + td
  out.push(out[3] + td + x);
  const second = out[4] + td + gap56;
  return [...out, ...out.map((t) => t + second)];
}

export const PATTERNS = {
  high: burst(highOnsets(0.1, 0.075, 0.6), 0.1, 3.0),
  medium: burst([0, 0.38, 0.76], 0.18, 5.0),
  low: burst([0, 0.38], 0.18, 16.0),
  connection: burst(highOnsets(0.1, 0.075, 0.6), 0.1, 3.0, [C5, C4, C4, C5, C4, C5, C4, C4, C5, C4]),
};

const HARMONICS = [1, 0.7, 0.5, 0.4, 0.32, 0.26]; // amplitude of harmonic 1..6
const LOOKAHEAD_S = 1.5; // bursts are scheduled this far ahead (timers in a background tab run about 1/s)
const START_DELAY_S = 0.05;
const LOG_SIZE = 60;
const BLOCKED_AFTER_MS = 1500; // a tap that has not started the audio after this long: the browser will not

export class AlarmSound {
  /** `onChange()` is called whenever `state` or `pattern` changes. */
  constructor(onChange = () => {}) {
    this.onChange = onChange;
    this.ctx = null;
    this.master = null;
    this.wave = null;
    this.state = "off";
    this.wanted = "none";  // what should sound
    this.pattern = "none"; // what is sounding now (none while the audio cannot run)
    this.nextBurst = 0;
    this.scheduled = [];   // {osc, gain, at, timer}
    this.timer = null;
    this.test = { state: this.state, pattern: "none", wanted: "none", pulses: 0, log: [] };
    window.__bedsideAudio = this.test;
    // (no onChange from the constructor: the caller reads `state` once it has the object)
    const AC = window.AudioContext || window.webkitAudioContext;
    if (typeof AC !== "function") {
      this.state = this.test.state = "blocked";
      return;
    }
    try {
      this.ctx = new AC({ latencyHint: "interactive" });
    } catch {
      this.state = this.test.state = "blocked";
      return;
    }
    this.master = this.ctx.createGain();
    this.master.gain.value = 0.6;
    this.master.connect(this.ctx.destination);
    const real = new Float32Array(HARMONICS.length + 1);
    const imag = new Float32Array(HARMONICS.length + 1);
    HARMONICS.forEach((a, i) => { imag[i + 1] = a; });
    this.wave = this.ctx.createPeriodicWave(real, imag);
    this.ctx.addEventListener("statechange", () => this.syncState());
    if (this.ctx.state === "running") this.state = this.test.state = "on";
  }

  /** Try to start the audio (call from a user gesture: a tap, a click, a key). */
  enable() {
    if (!this.ctx) return Promise.resolve(this.state);
    if (this.ctx.state === "running") return Promise.resolve(this.syncState());
    const resumed = this.ctx.resume().catch(() => undefined);
    const waited = new Promise((resolve) => setTimeout(resolve, BLOCKED_AFTER_MS));
    return Promise.race([resumed.then(() => this.ctx.state === "running" || waited), waited]).then(() => {
      this.syncState();
      if (this.state !== "on") this.setState("blocked");
      return this.state;
    });
  }

  syncState() {
    if (!this.ctx) return this.state;
    const running = this.ctx.state === "running";
    // a context that stopped later (another app took the audio) is off again, not blocked
    if (running) this.setState("on");
    else if (this.state === "on" || this.state === "off") this.setState("off");
    return this.state;
  }

  setState(s) {
    if (s === this.state && this.test.state === s) return;
    this.state = s;
    this.test.state = s;
    this.apply();
  }

  /** Sound `pattern` ("high" | "medium" | "low" | "connection" | "none") from now on. */
  set(pattern) {
    const p = pattern in PATTERNS ? pattern : "none";
    if (p === this.wanted) return;
    this.wanted = p;
    this.test.wanted = p;
    this.apply();
  }

  apply() {
    const playing = this.state === "on" ? this.wanted : "none";
    if (playing !== this.pattern) {
      this.cancel();
      this.pattern = playing;
      this.test.pattern = playing;
      if (playing !== "none") {
        this.nextBurst = this.ctx.currentTime + START_DELAY_S;
        this.schedule();
        if (!this.timer) this.timer = setInterval(() => this.schedule(), 250);
      } else if (this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    }
    this.onChange();
  }

  /** Schedule every burst that starts within the lookahead. */
  schedule() {
    if (this.pattern === "none" || !this.ctx) return;
    const now = this.ctx.currentTime;
    if (this.nextBurst < now) this.nextBurst = now + START_DELAY_S; // the clock ran on (a suspended context)
    this.scheduled = this.scheduled.filter((s) => s.at + 1 > now);
    const p = PATTERNS[this.pattern];
    while (this.nextBurst < now + LOOKAHEAD_S) {
      for (const pulse of p.pulses) this.pulse(this.nextBurst + pulse.at, pulse.f, p.td, this.pattern);
      this.nextBurst += p.period;
    }
  }

  pulse(at, f, td, pattern) {
    const ctx = this.ctx;
    const osc = ctx.createOscillator();
    osc.setPeriodicWave(this.wave);
    osc.frequency.value = f;
    const gain = ctx.createGain();
    const rise = 0.15 * td;
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(1, at + rise);
    gain.gain.setValueAtTime(1, at + td - rise);
    gain.gain.linearRampToValueAtTime(0, at + td);
    osc.connect(gain);
    gain.connect(this.master);
    osc.start(at);
    osc.stop(at + td + 0.01);
    osc.addEventListener("ended", () => {
      osc.disconnect();
      gain.disconnect();
    });
    const entry = { osc, gain, at, timer: 0 };
    entry.timer = setTimeout(() => {
      this.test.pulses += 1;
      this.test.log.push({ t: at, f, td, pattern });
      if (this.test.log.length > LOG_SIZE) this.test.log.shift();
    }, Math.max(0, (at - ctx.currentTime) * 1000));
    this.scheduled.push(entry);
  }

  /** Drop the pulses that have not started yet (one that is playing finishes: no click). */
  cancel() {
    if (!this.ctx) return;
    const now = this.ctx.currentTime;
    for (const s of this.scheduled) {
      if (s.at > now) {
        clearTimeout(s.timer);
        try {
          s.osc.stop(0);
        } catch {
          // already stopped
        }
        s.osc.disconnect();
        s.gain.disconnect();
      }
    }
    this.scheduled = [];
  }
}
