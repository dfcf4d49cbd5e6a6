/**
 * Bounded concurrency for a list of independent async jobs (reading frame sizes, object metadata): at most
 * `limit` run at once, and the results come back in the order of the input. The first failure rejects the whole
 * call, as Promise.all does; jobs already started run on.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  return out;
}
