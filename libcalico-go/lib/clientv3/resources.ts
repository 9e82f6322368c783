// v3 resources over a Backend: validation and defaults on every write, Calico's metadata
// (uid, creationTimestamp, resourceVersion = the key's revision) and its immutable fields.
import { randomUUID } from 'node:crypto';
import { AlreadyExistsError, type Backend, ConflictError, NotFoundError } from '../backend/api.js';
import { resourceKey, resourcePrefix } from '../backend/keys.js';
import { kindInfo } from '../apis/v3/kinds.js';
import type { Resource } from '../apis/v3/resource.js';
import { validateResource } from '../apis/v3/validate.js';

export class ResourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ResourceError';
  }
}

function describe(r: Resource): string {
  const ns = r.metadata.namespace ? `${r.metadata.namespace}/` : '';
  return `${r.kind}(${ns}${r.metadata.name})`;
}

/** Fields that may not change once a resource exists, by kind. */
const IMMUTABLE: Record<string, string[]> = { IPPool: ['cidr', 'blockSize'] };

export class ResourceClient {
  constructor(private readonly store: Backend) {}

  private decode(value: string, revision: string): Resource {
    const r = JSON.parse(value) as Resource;
    r.metadata.resourceVersion = revision;
    return r;
  }

  private encode(r: Resource): string {
    const { resourceVersion: _rv, ...metadata } = r.metadata;
    return JSON.stringify({ ...r, metadata });
  }

  private key(r: Resource): string {
    return resourceKey(r.kind, r.metadata.name, r.metadata.namespace);
  }

  async get(kind: string, name: string, namespace?: string): Promise<Resource | null> {
    const kv = await this.store.get(resourceKey(kind, name, namespace));
    return kv ? this.decode(kv.value, kv.revision) : null;
  }

  /** All resources of a kind, optionally in one namespace, sorted by namespace then name. */
  async list(kind: string, namespace?: string): Promise<Resource[]> {
    const { items } = await this.store.list(resourcePrefix(kind, namespace));
    return items.map((kv) => this.decode(kv.value, kv.revision));
  }

  private async validate(input: unknown): Promise<Resource> {
    const kind = (input as Resource | null)?.kind;
    const pools = kind === 'IPPool' ? await this.list('IPPool') : undefined;
    return validateResource(input, { pools });
  }

  async create(input: unknown): Promise<Resource> {
    const r = await this.validate(input);
    r.metadata.uid = randomUUID();
    r.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    try {
      const kv = await this.store.create(this.key(r), this.encode(r));
      r.metadata.resourceVersion = kv.revision;
      return r;
    } catch (e) {
      if (e instanceof AlreadyExistsError) throw new ResourceError(`resource already exists: ${describe(r)}`);
      throw e;
    }
  }

  /**
   * Replaces an existing resource. With metadata.resourceVersion set, only if it still matches
   * (compare-and-swap); without it, against the current revision.
   */
  async update(input: unknown): Promise<Resource> {
    const r = await this.validate(input);
    const current = await this.store.get(this.key(r));
    if (!current) throw new ResourceError(`resource does not exist: ${describe(r)}`);
    const old = this.decode(current.value, current.revision);
    for (const field of IMMUTABLE[r.kind] ?? []) {
      const before = (old.spec as Record<string, unknown> | undefined)?.[field];
      const after = (r.spec as Record<string, unknown> | undefined)?.[field];
      if (JSON.stringify(before) !== JSON.stringify(after)) {
        throw new ResourceError(
          `${describe(r)}: spec.${field} cannot be changed (from ${JSON.stringify(before)} to ${JSON.stringify(after)})`,
        );
      }
    }
    const want = r.metadata.resourceVersion ?? current.revision;
    r.metadata.uid = old.metadata.uid;
    r.metadata.creationTimestamp = old.metadata.creationTimestamp;
    try {
      const kv = await this.store.update(this.key(r), this.encode(r), want);
      r.metadata.resourceVersion = kv.revision;
      return r;
    } catch (e) {
      if (e instanceof ConflictError) {
        throw new ResourceError(
          `update conflict: ${describe(r)} has changed (resourceVersion ${want} is not the latest)`,
        );
      }
      if (e instanceof NotFoundError) throw new ResourceError(`resource does not exist: ${describe(r)}`);
      throw e;
    }
  }

  /** Creates or replaces, keeping uid and creationTimestamp of an existing object. */
  async apply(input: unknown): Promise<Resource> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await this.validate(input);
      const existing = await this.get(r.kind, r.metadata.name, r.metadata.namespace);
      try {
        if (!existing) return await this.create(input);
        const copy = structuredClone(input) as Resource;
        copy.metadata = { ...copy.metadata, resourceVersion: existing.metadata.resourceVersion };
        return await this.update(copy);
      } catch (e) {
        // Lost a race with another writer: look again.
        if (!(e instanceof ResourceError) || !/already exists|update conflict|does not exist/.test(e.message)) throw e;
      }
    }
    throw new ResourceError('apply kept conflicting with concurrent writers; try again');
  }

  async delete(kind: string, name: string, namespace?: string, resourceVersion?: string): Promise<Resource> {
    const info = kindInfo(kind);
    if (!info) throw new ResourceError(`unknown kind ${JSON.stringify(kind)}`);
    const ns = info.namespaced ? (namespace ?? 'default') : undefined;
    try {
      const kv = await this.store.delete(resourceKey(kind, name, ns), resourceVersion);
      return this.decode(kv.value, kv.revision);
    } catch (e) {
      const label = `${kind}(${ns ? ns + '/' : ''}${name})`;
      if (e instanceof NotFoundError) throw new ResourceError(`resource does not exist: ${label}`);
      if (e instanceof ConflictError) throw new ResourceError(`delete conflict: ${label} has changed`);
      throw e;
    }
  }
}
