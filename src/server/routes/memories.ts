import Type, { type Static, type TSchema } from 'typebox';
import { InvalidRequestError, NotFoundError } from '../../errors.js';
import type {
  LongTermMemory,
  MemoryFilter,
  MemoryHistoryEntry,
  MemoryRecord,
  MemorySnapshot,
  NewMemory,
  SearchHit,
} from '../../memory/index.js';
import type { App } from '../app.js';
import { type Identity, identityOf } from '../identity.js';
import { ErrorResponseSchema } from '../schemas.js';

function Nullable<T extends TSchema & { type: string }>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] });
}

const FreeObject = Type.Object({}, { additionalProperties: true });
const Id = Type.String({ minLength: 1, maxLength: 256 });
const Instant = Type.Union([Type.String({ format: 'date-time' }), Type.Integer({ minimum: 0 })], {
  description: 'an ISO 8601 time, or milliseconds since the epoch',
});

const MemoryJson = Type.Object({
  id: Type.String(),
  object: Type.Literal('memory'),
  user_id: Nullable(Type.String()),
  agent_id: Nullable(Type.String()),
  session_id: Nullable(Type.String()),
  text: Type.String(),
  metadata: FreeObject,
  tags: Type.Array(Type.String()),
  importance: Type.Number(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  expires_at: Nullable(Type.String({ format: 'date-time' })),
});

const NewMemoryBody = Type.Object(
  {
    text: Type.String({ minLength: 1 }),
    user_id: Type.Optional(Id),
    agent_id: Type.Optional(Id),
    session_id: Type.Optional(Id),
    metadata: Type.Optional(FreeObject),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }))),
    importance: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    expires_at: Type.Optional(Type.Union([Instant, Type.Null()])),
    embedding: Type.Optional(Type.Array(Type.Number(), { description: 'a precomputed vector' })),
  },
  { additionalProperties: false },
);

const PatchBody = Type.Object(
  {
    text: Type.Optional(Type.String({ minLength: 1 })),
    metadata: Type.Optional(FreeObject),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }))),
    importance: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    expires_at: Type.Optional(Type.Union([Instant, Type.Null()])),
  },
  { additionalProperties: false },
);

const FilterBody = Type.Object(
  {
    user_id: Type.Optional(Id),
    agent_id: Type.Optional(Id),
    session_id: Type.Optional(Id),
    metadata: Type.Optional(FreeObject),
    tags: Type.Optional(Type.Array(Type.String())),
    tags_any: Type.Optional(Type.Array(Type.String())),
    created_after: Type.Optional(Instant),
    created_before: Type.Optional(Instant),
    updated_after: Type.Optional(Instant),
    updated_before: Type.Optional(Instant),
  },
  { additionalProperties: false },
);

const SearchBody = Type.Object(
  {
    text: Type.Optional(Type.String({ maxLength: 32_000 })),
    vector: Type.Optional(Type.Array(Type.Number())),
    mode: Type.Optional(
      Type.Union(
        ['exact', 'fulltext', 'semantic', 'hybrid'].map((m) => Type.Literal(m)),
        {
          description: 'default: hybrid with a text, semantic with only a vector, exact with neither',
        },
      ),
    ),
    filter: Type.Optional(FilterBody),
    top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    min_score: Type.Optional(Type.Number()),
    weights: Type.Optional(
      Type.Object(
        {
          fulltext: Type.Optional(Type.Number({ minimum: 0 })),
          semantic: Type.Optional(Type.Number({ minimum: 0 })),
          context: Type.Optional(Type.Number({ minimum: 0 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const ComponentJson = Type.Object({ score: Type.Number(), rank: Type.Integer() });

const ListQuery = Type.Object(
  {
    user_id: Type.Optional(Id),
    agent_id: Type.Optional(Id),
    session_id: Type.Optional(Id),
    tag: Type.Optional(Type.String({ description: 'only memories with this tag' })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

const Params = Type.Object({ id: Id });
const Errors = { '4xx': ErrorResponseSchema };

const iso = (ms: number) => new Date(ms).toISOString();

function toJson(m: MemoryRecord) {
  return {
    id: m.id,
    object: 'memory' as const,
    user_id: m.user_id,
    agent_id: m.agent_id,
    session_id: m.session_id,
    text: m.text,
    metadata: m.metadata,
    tags: m.tags,
    importance: m.importance,
    created_at: iso(m.created_at),
    updated_at: iso(m.updated_at),
    expires_at: m.expires_at === null ? null : iso(m.expires_at),
  };
}

function snapshotJson(s: MemorySnapshot | null) {
  if (s === null) return null;
  return {
    ...s,
    updated_at: iso(s.updated_at),
    expires_at: s.expires_at === null ? null : iso(s.expires_at),
  };
}

function historyJson(h: MemoryHistoryEntry) {
  return { seq: h.seq, action: h.action, at: iso(h.at), old: snapshotJson(h.old), new: snapshotJson(h.new) };
}

function hitJson(hit: SearchHit) {
  return { memory: toJson(hit.memory), score: hit.score, scores: hit.scores };
}

/** Milliseconds from an ISO string or a number; a 400 naming the field otherwise. */
function instant(value: string | number | null | undefined, field: string): number | null | undefined {
  if (value === undefined || value === null) return value;
  if (typeof value === 'number') return value;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidRequestError(`${field} is not a time`, { details: { field } });
  return ms;
}

function toFilter(body: Static<typeof FilterBody> | undefined, identity: Identity): MemoryFilter {
  const filter: MemoryFilter = {
    user_id: body?.user_id,
    agent_id: body?.agent_id,
    session_id: body?.session_id,
    metadata: body?.metadata as MemoryFilter['metadata'],
    tags: body?.tags,
    tags_any: body?.tags_any,
    created_after: instant(body?.created_after, 'filter.created_after') ?? undefined,
    created_before: instant(body?.created_before, 'filter.created_before') ?? undefined,
    updated_after: instant(body?.updated_after, 'filter.updated_after') ?? undefined,
    updated_before: instant(body?.updated_before, 'filter.updated_before') ?? undefined,
  };
  return withIdentityUser(filter, identity);
}

/** A key bound to a user sees only that user's memories, whatever the request asks. */
function withIdentityUser(filter: MemoryFilter, identity: Identity): MemoryFilter {
  if (identity.userId === undefined) return filter;
  if (filter.user_id !== undefined && filter.user_id !== identity.userId)
    throw new NotFoundError(`no user "${filter.user_id}" for this key`, { details: { field: 'user_id' } });
  return { ...filter, user_id: identity.userId };
}

function toNewMemory(body: Static<typeof NewMemoryBody>, identity: Identity, at: string): NewMemory {
  return {
    text: body.text,
    user_id: identity.userId ?? body.user_id,
    agent_id: body.agent_id,
    session_id: body.session_id,
    metadata: body.metadata as Record<string, unknown> | undefined,
    tags: body.tags,
    importance: body.importance,
    expires_at: instant(body.expires_at, `${at}expires_at`),
    embedding: body.embedding,
  };
}

/** `/v1/memories`: CRUD, batch add, search and history of long-term memories. */
export function memoryRoutes(app: App, memory: LongTermMemory): void {
  /** The memory, if the caller's tenant (and user, for a user-bound key) owns it. */
  async function owned(identity: Identity, id: string): Promise<MemoryRecord> {
    const found = await memory.get(identity.tenantId, id);
    if (found === undefined || (identity.userId !== undefined && found.user_id !== identity.userId))
      throw new NotFoundError(`no memory "${id}"`, { details: { field: 'id' } });
    return found;
  }

  app.post(
    '/v1/memories',
    {
      schema: {
        summary: 'Add a memory',
        tags: ['memories'],
        body: NewMemoryBody,
        response: { 201: MemoryJson, ...Errors },
      },
    },
    async (request, reply) => {
      const identity = identityOf(request);
      const [added] = await memory.add({ tenant_id: identity.tenantId }, [
        toNewMemory(request.body, identity, ''),
      ]);
      reply.code(201);
      return toJson(added!);
    },
  );

  app.post(
    '/v1/memories/batch',
    {
      schema: {
        summary: 'Add many memories in one transaction (all or none)',
        tags: ['memories'],
        body: Type.Object(
          { memories: Type.Array(NewMemoryBody, { minItems: 1 }) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ object: Type.Literal('list'), data: Type.Array(MemoryJson) }),
          ...Errors,
        },
      },
    },
    async (request, reply) => {
      const identity = identityOf(request);
      const items = request.body.memories.map((m, i) => toNewMemory(m, identity, `memories[${i}].`));
      const added = await memory.add({ tenant_id: identity.tenantId }, items);
      reply.code(201);
      return { object: 'list' as const, data: added.map(toJson) };
    },
  );

  app.get(
    '/v1/memories',
    {
      schema: {
        summary: 'List memories, newest first',
        tags: ['memories'],
        querystring: ListQuery,
        response: {
          200: Type.Object({
            object: Type.Literal('list'),
            data: Type.Array(MemoryJson),
            next_cursor: Nullable(Type.String()),
          }),
          ...Errors,
        },
      },
    },
    async (request) => {
      const identity = identityOf(request);
      const q = request.query;
      const filter = withIdentityUser(
        {
          user_id: q.user_id,
          agent_id: q.agent_id,
          session_id: q.session_id,
          tags: q.tag === undefined ? undefined : [q.tag],
        },
        identity,
      );
      const page = await memory.list({
        tenant_id: identity.tenantId,
        filter,
        limit: q.limit,
        cursor: q.cursor,
      });
      return { object: 'list' as const, data: page.items.map(toJson), next_cursor: page.next_cursor };
    },
  );

  app.post(
    '/v1/memories/search',
    {
      schema: {
        summary: 'Search memories: exact, full text (BM25), semantic or hybrid, with filters',
        tags: ['memories'],
        body: SearchBody,
        response: {
          200: Type.Object({
            object: Type.Literal('list'),
            mode: Type.String(),
            strategy: Type.String({ description: 'how vectors were searched: exact, hnsw or none' }),
            candidates: Type.Integer({ description: 'memories that passed the filter' }),
            data: Type.Array(
              Type.Object({
                memory: MemoryJson,
                score: Type.Number(),
                scores: Type.Object({
                  exact: Type.Optional(ComponentJson),
                  fulltext: Type.Optional(ComponentJson),
                  semantic: Type.Optional(ComponentJson),
                }),
              }),
            ),
          }),
          ...Errors,
        },
      },
    },
    async (request) => {
      const identity = identityOf(request);
      const body = request.body;
      const result = await memory.search({
        tenant_id: identity.tenantId,
        text: body.text,
        vector: body.vector,
        mode: body.mode as 'exact' | 'fulltext' | 'semantic' | 'hybrid' | undefined,
        filter: toFilter(body.filter, identity),
        top_k: body.top_k,
        min_score: body.min_score,
        weights: body.weights,
      });
      return {
        object: 'list' as const,
        mode: result.mode,
        strategy: result.strategy,
        candidates: result.candidates,
        data: result.hits.map(hitJson),
      };
    },
  );

  app.get(
    '/v1/memories/:id',
    {
      schema: {
        summary: 'A memory',
        tags: ['memories'],
        params: Params,
        response: { 200: MemoryJson, ...Errors },
      },
    },
    async (request) => toJson(await owned(identityOf(request), request.params.id)),
  );

  app.patch(
    '/v1/memories/:id',
    {
      schema: {
        summary: 'Change a memory (a new text is re-embedded in the same transaction)',
        tags: ['memories'],
        params: Params,
        body: PatchBody,
        response: { 200: MemoryJson, ...Errors },
      },
    },
    async (request) => {
      const identity = identityOf(request);
      await owned(identity, request.params.id);
      const body = request.body;
      const updated = await memory.update(identity.tenantId, request.params.id, {
        text: body.text,
        metadata: body.metadata as Record<string, unknown> | undefined,
        tags: body.tags,
        importance: body.importance,
        expires_at: instant(body.expires_at, 'expires_at'),
      });
      if (updated === undefined) throw new NotFoundError(`no memory "${request.params.id}"`);
      return toJson(updated);
    },
  );

  app.delete(
    '/v1/memories/:id',
    {
      schema: {
        summary: 'Delete a memory with its vector and index entries',
        tags: ['memories'],
        params: Params,
        response: {
          200: Type.Object({ id: Type.String(), object: Type.Literal('memory'), deleted: Type.Boolean() }),
          ...Errors,
        },
      },
    },
    async (request) => {
      const identity = identityOf(request);
      await owned(identity, request.params.id);
      if (!(await memory.delete(identity.tenantId, request.params.id)))
        throw new NotFoundError(`no memory "${request.params.id}"`);
      return { id: request.params.id, object: 'memory' as const, deleted: true };
    },
  );

  app.get(
    '/v1/memories/:id/history',
    {
      schema: {
        summary: "A memory's audit trail: every add, update and delete with old and new values",
        tags: ['memories'],
        params: Params,
        response: {
          200: Type.Object({
            object: Type.Literal('list'),
            data: Type.Array(
              Type.Object({
                seq: Type.Integer(),
                action: Type.String(),
                at: Type.String({ format: 'date-time' }),
                old: Type.Union([FreeObject, Type.Null()]),
                new: Type.Union([FreeObject, Type.Null()]),
              }),
            ),
          }),
          ...Errors,
        },
      },
    },
    async (request) => {
      const identity = identityOf(request);
      const history = await memory.history(identity.tenantId, request.params.id);
      const last = history.at(-1)?.new ?? history.at(-1)?.old;
      if (history.length === 0 || (identity.userId !== undefined && last?.user_id !== identity.userId))
        throw new NotFoundError(`no memory "${request.params.id}"`, { details: { field: 'id' } });
      return { object: 'list' as const, data: history.map(historyJson) };
    },
  );
}
