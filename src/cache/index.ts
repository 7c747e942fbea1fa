export { type CacheOptions, MultiLevelCache, type SetOptions } from './multi-level.js';
export { type CachedReply, ResponseCache } from './response-cache.js';
