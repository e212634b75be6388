/** Draws from a uniform generator `rng` (seedrandom's), one definition for every seeded use. */

/** A standard normal draw (Box–Muller): two draws of `rng`, the first kept away from 0. */
export function gauss(rng: () => number): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** A uniform draw in [a, b). */
export const uniform = (rng: () => number, a: number, b: number): number => a + (b - a) * rng();
