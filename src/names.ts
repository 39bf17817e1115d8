/**
 * The rules for names people take as identity: display names, thread titles (issue 15 #6). Such a
 * name could pass for someone else's: `"\u202eecila"` shows as "alice" reversed, zero-width and
 * other invisible characters make look-alikes of any name, and dozens of stacked combining marks
 * spill over the text around them. So names are NFKC-normalised (fullwidth and other compatibility
 * forms become their plain letters, composed where possible), runs of spaces become one
 * space, and what is left must not hold control, format or default-ignorable code points (bidi
 * controls, zero-width characters, fillers; except inside emoji, whose sequences use ZWJ and
 * variation selectors), nor more than {@link MAX_COMBINING_RUN} combining marks in a row.
 * Look-alikes made of other scripts' letters (Cyrillic "аlice") pass: they are real names in
 * those scripts; the page shows the username where a display name could mislead.
 */

/** Combining marks allowed in a row (Vietnamese needs two; stacked Zalgo text dozens). */
export const MAX_COMBINING_RUN = 4;

// The v flag (for RGI_Emoji, which matches whole sequences) needs the constructor below ES2024 targets.
const EMOJI = new RegExp('\\p{RGI_Emoji}', 'gv');
const EMOJI_PARTS = new RegExp('(\\p{RGI_Emoji})', 'v');
const CONTROL = /\p{Cc}/u;
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
const INVISIBLES = /[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Cc}]/gu;
const COMBINING_RUN = new RegExp(`\\p{M}{${MAX_COMBINING_RUN + 1},}`, 'u');
const COMBINING_RUNS = new RegExp(`(\\p{M}{${MAX_COMBINING_RUN}})\\p{M}+`, 'gu');

/** NFKC (which makes the other spaces plain ones), runs of spaces as one, trimmed. Line breaks and tabs stay, to be refused. */
export function normalizeName(value: string): string {
  return value.normalize('NFKC').replace(/ {2,}/g, ' ').trim();
}

/** What is wrong with a normalised name, in words for a 400 answer; undefined when nothing is. */
export function nameProblem(name: string): string | undefined {
  if (CONTROL.test(name)) return 'must not contain control characters';
  if (INVISIBLE.test(name.replace(EMOJI, ''))) return 'must not contain invisible or formatting characters (bidirectional controls, zero-width characters, fillers)';
  if (COMBINING_RUN.test(name)) return `must not stack more than ${MAX_COMBINING_RUN} combining marks`;
  return undefined;
}

/**
 * A name from elsewhere (a host JWT's name claim) made fit: normalised, what the rules refuse
 * taken out (emoji kept whole), combining runs cut short. May come out empty.
 */
export function cleanName(value: string): string {
  // split() with a capturing group keeps the emoji: they are the odd parts.
  const parts = normalizeName(value).split(EMOJI_PARTS);
  return normalizeName(parts.map((part, i) => (i % 2 ? part : part.replace(INVISIBLES, '').replace(COMBINING_RUNS, '$1'))).join(''));
}
