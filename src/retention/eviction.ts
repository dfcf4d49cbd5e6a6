/**
 * TEMPORARY re-exports while the last importers move to src/retention/{plan,move,evictor}.ts and
 * src/store/tiers.ts; removed once nothing imports it.
 */
export * from "./plan.ts";
export { equalBytes, isMd5Etag, md5Hex, StoreFailure } from "./move.ts";
export * from "./evictor.ts";
export { fetchFrame, type TierStores } from "../store/tiers.ts";
