// Go's %q for the messages blackbox_exporter writes (`Unknown module "…"`): printable
// characters as they are, quotes and backslashes escaped, control characters as \n, \t, \xNN.

const NAMED: Record<string, string> = {
  "\x07": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
  '"': '\\"', "\\": "\\\\",
};

export function goQuote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (NAMED[ch]) out += NAMED[ch];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, "0")}`;
    // C1 controls, line and paragraph separators, lone surrogates: not printable
    else if ((cp >= 0x80 && cp <= 0x9f) || cp === 0x2028 || cp === 0x2029 || (cp >= 0xd800 && cp <= 0xdfff)) {
      out += `\\u${cp.toString(16).padStart(4, "0")}`;
    } else out += ch;
  }
  return out + '"';
}
