// Numbers as Go's Prometheus client writes them (strconv.FormatFloat(v, 'g', -1, 64)): the
// shortest digits that read back exactly, in exponent form when the exponent is below -4 or at
// least the digit count (and at least 6): 4, 0.000867243, 1.6474e-05, 1.798771094e+09.
// Prometheus reads either form; the same form makes our answers diff cleanly against blackbox's.

export function goFloat(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (v === 0) return Object.is(v, -0) ? "-0" : "0";
  const [mantissa, exp] = v.toExponential().split("e"); // shortest round-trip digits
  const sign = mantissa.startsWith("-") ? "-" : "";
  const digits = mantissa.replace(/^-/, "").replace(".", "");
  const exponent = Number(exp);
  const nd = digits.length;
  const dp = exponent + 1; // where the decimal point goes, counted in digits
  let eprec = 6;
  if (eprec > nd && nd >= dp) eprec = nd;
  if (exponent < -4 || exponent >= eprec) {
    const e = Math.abs(exponent);
    return `${sign}${digits[0]}${nd > 1 ? `.${digits.slice(1)}` : ""}e${exponent < 0 ? "-" : "+"}${e < 10 ? `0${e}` : e}`;
  }
  if (dp <= 0) return `${sign}0.${"0".repeat(-dp)}${digits}`;
  if (dp >= nd) return `${sign}${digits}${"0".repeat(dp - nd)}`;
  return `${sign}${digits.slice(0, dp)}.${digits.slice(dp)}`;
}
