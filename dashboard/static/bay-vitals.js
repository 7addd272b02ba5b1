// How the bay detail page labels and draws each vital (display only: names and units mirror the server's
// catalogue, monitor/vitals.py; nothing here decides anything clinical).

export const VITALS = {
  hr: { label: "HR", unit: "/min", color: "#4be35e" },
  pr: { label: "PR", unit: "/min", color: "#9be86f" },
  spo2: { label: "SpO2", unit: "%", color: "#5ad1ff" },
  nibp_sys: { label: "NIBP sys", unit: "mmHg", color: "#f2f2f2" },
  nibp_dia: { label: "NIBP dia", unit: "mmHg", color: "#b8c0cc" },
  nibp_map: { label: "NIBP map", unit: "mmHg", color: "#ff9f43" },
  abp_sys: { label: "ABP sys", unit: "mmHg", color: "#ff8fa3" },
  abp_dia: { label: "ABP dia", unit: "mmHg", color: "#d9778a" },
  abp_map: { label: "ABP map", unit: "mmHg", color: "#ffb3c1" },
  rr: { label: "RR", unit: "/min", color: "#c792ea" },
  etco2: { label: "EtCO2", unit: "mmHg", color: "#e6d7a3" },
  temp: { label: "Temp", unit: "\u00B0C", color: "#f4a261" },
  pi: { label: "PI", unit: "%", color: "#8ecae6" },
};

/** Catalogue order of the vital keys. */
export const VITAL_ORDER = Object.keys(VITALS);

/**
 * One chart per group: pressures share a chart (sys/dia/map), every other vital has its own.
 * `points`: spot measurements drawn as points, never joined by a line.
 */
export const CHART_GROUPS = [
  { key: "hr", label: "HR", unit: "/min", vitals: ["hr"] },
  { key: "pr", label: "PR", unit: "/min", vitals: ["pr"] },
  { key: "spo2", label: "SpO2", unit: "%", vitals: ["spo2"] },
  { key: "nibp", label: "NIBP", unit: "mmHg", vitals: ["nibp_sys", "nibp_dia", "nibp_map"], points: true },
  { key: "abp", label: "ABP", unit: "mmHg", vitals: ["abp_sys", "abp_dia", "abp_map"] },
  { key: "rr", label: "RR", unit: "/min", vitals: ["rr"] },
  { key: "etco2", label: "EtCO2", unit: "mmHg", vitals: ["etco2"] },
  { key: "temp", label: "Temp", unit: "\u00B0C", vitals: ["temp"] },
  { key: "pi", label: "PI", unit: "%", vitals: ["pi"] },
];

export function groupOf(vital) {
  return CHART_GROUPS.find((g) => g.vitals.includes(vital)) ?? null;
}

export function vitalLabel(key) {
  return VITALS[key]?.label ?? key;
}

export function vitalUnit(key) {
  return VITALS[key]?.unit ?? "";
}

export function formatValue(key, value) {
  if (!Number.isFinite(value)) return "---";
  return key === "temp" || key === "pi" ? value.toFixed(1) : String(Math.round(value));
}

export const SYMBOL = { high: "!!!", medium: "!!", low: "!" };

export const ANNOTATION_KINDS = {
  infusion_start: "Infusion start",
  infusion_stop: "Infusion stop",
  nausea: "Nausea",
  emergence: "Emergence reaction",
  analgesia: "Analgesia",
  note: "Note",
};
