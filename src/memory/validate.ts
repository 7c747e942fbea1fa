import { InvalidRequestError, PayloadTooLargeError } from '../errors.js';
import type { MemoryPatch, NewMemory } from './types.js';

/** Limits on what one memory may hold. */
export interface MemoryLimits {
  maxTextChars: number;
  maxTags: number;
  maxMetadataBytes: number;
}

function invalid(message: string, field: string): never {
  throw new InvalidRequestError(message, { details: { field } });
}

function checkText(text: unknown, field: string, limits: MemoryLimits): void {
  if (typeof text !== 'string' || text.trim().length === 0)
    invalid(`${field} must be a non-empty string`, field);
  if (text.length > limits.maxTextChars) {
    throw new PayloadTooLargeError(`${field} is longer than ${limits.maxTextChars} characters`, {
      details: { field, max: limits.maxTextChars },
    });
  }
}

function checkCommon(
  item: { metadata?: unknown; tags?: unknown; importance?: unknown; expires_at?: unknown },
  at: string,
  limits: MemoryLimits,
): void {
  if (item.metadata !== undefined) {
    if (typeof item.metadata !== 'object' || item.metadata === null || Array.isArray(item.metadata))
      invalid(`${at}metadata must be an object`, `${at}metadata`);
    if (JSON.stringify(item.metadata).length > limits.maxMetadataBytes) {
      throw new PayloadTooLargeError(`${at}metadata is larger than ${limits.maxMetadataBytes} bytes`, {
        details: { field: `${at}metadata`, max: limits.maxMetadataBytes },
      });
    }
  }
  if (item.tags !== undefined) {
    const tags = item.tags;
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t.length === 0 || t.length > 128))
      invalid(`${at}tags must be an array of strings of 1 to 128 characters`, `${at}tags`);
    if (tags.length > limits.maxTags) invalid(`${at}tags has more than ${limits.maxTags} tags`, `${at}tags`);
  }
  if (item.importance !== undefined) {
    const importance = item.importance;
    if (typeof importance !== 'number' || !(importance >= 0 && importance <= 1))
      invalid(`${at}importance must be a number from 0 to 1`, `${at}importance`);
  }
  if (item.expires_at !== undefined && item.expires_at !== null) {
    if (typeof item.expires_at !== 'number' || !Number.isFinite(item.expires_at))
      invalid(`${at}expires_at must be a time`, `${at}expires_at`);
  }
}

/** Checks a memory to add; `at` prefixes field names (`memories[3].`). */
export function checkNewMemory(item: NewMemory, at: string, limits: MemoryLimits): void {
  if (typeof item !== 'object' || item === null)
    invalid(`${at || 'memory'} must be an object`, at || 'memory');
  checkText(item.text, `${at}text`, limits);
  for (const key of ['user_id', 'agent_id', 'session_id'] as const) {
    const value = item[key];
    if (
      value !== undefined &&
      value !== null &&
      (typeof value !== 'string' || value.length === 0 || value.length > 256)
    )
      invalid(`${at}${key} must be a string of 1 to 256 characters`, `${at}${key}`);
  }
  checkCommon(item, at, limits);
}

/** Checks an update: at least one field, each valid. */
export function checkPatch(patch: MemoryPatch, limits: MemoryLimits): void {
  if (
    patch.text === undefined &&
    patch.metadata === undefined &&
    patch.tags === undefined &&
    patch.importance === undefined &&
    patch.expires_at === undefined
  )
    invalid('an update needs at least one of text, metadata, tags, importance, expires_at', 'body');
  if (patch.text !== undefined) checkText(patch.text, 'text', limits);
  checkCommon(patch, '', limits);
}

/** A vector given by a caller, checked for size and finiteness. */
export function checkVector(value: Float32Array | number[], dimensions: number, field: string): Float32Array {
  if (value.length !== dimensions)
    invalid(`${field} has ${value.length} dimensions; the memory store uses ${dimensions}`, field);
  const vector = value instanceof Float32Array ? value : Float32Array.from(value);
  for (let i = 0; i < vector.length; i++) {
    if (!Number.isFinite(vector[i]!)) invalid(`${field} must contain finite numbers`, field);
  }
  return vector;
}
