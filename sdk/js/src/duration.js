// Durations written in config values, the host's syntax: a whole number and a unit.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of "1500ms", "300s", "5m", "24h" or "7d"; throws for anything else. */
export function parseDuration(text) {
  const match = /^([0-9]+)(ms|s|m|h|d)$/.exec(String(text).trim());
  if (!match) {
    throw new Error(
      `\`${text}\` is not a duration: expected a whole number and a unit (\`ms\`, \`s\`, \`m\`, \`h\` or \`d\`), e.g. \`5m\``,
    );
  }
  return Number(match[1]) * UNIT_MS[match[2]];
}
