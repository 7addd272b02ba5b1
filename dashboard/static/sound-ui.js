// The alarm sound on a page: the "SOUND OFF — tap to enable" control, the "SOUND ON" indicator, and the test
// attributes body[data-sound] / body[data-sounding]. Shared by the central view and the bay page, so a nurse
// who opens a bay's page at the station still hears every bay.

import { AlarmSound } from "./audio.js";
import { loudestAudible } from "./state.js";

/**
 * button:    the big enable control (#sound-enable); indicator: the small "SOUND ON" (#sound-ind).
 * Returns {update(state, offline)}: call it whenever alarms, the clock or the connection change.
 */
export function pageSound(button, indicator) {
  const sound = new AlarmSound(show);

  function show() {
    const s = sound.state;
    document.body.dataset.sound = s;
    document.body.dataset.sounding = sound.pattern;
    button.dataset.sound = s;
    button.dataset.wanted = sound.wanted;
    button.hidden = s === "on";
    indicator.hidden = s !== "on";
    const text = s === "blocked"
      ? "NO ALARM SOUND \u2014 this browser cannot play sound here (tap to try again)"
      : "SOUND OFF \u2014 tap to enable alarm sound";
    if (button.textContent !== text) button.textContent = text;
  }

  function enable() {
    if (sound.state !== "on") sound.enable();
  }

  button.addEventListener("click", enable);
  // any tap or key on the page also starts the sound (browsers allow audio only after a user gesture)
  document.addEventListener("pointerdown", enable, { capture: true });
  document.addEventListener("keydown", enable, { capture: true });
  show();

  return {
    /** The connection-loss signal while the page is offline, else the loudest audible alarm of all bays. */
    update(state, offline) {
      sound.set(offline ? "connection" : loudestAudible(state.bays.values(), state.serverNow()));
    },
  };
}
