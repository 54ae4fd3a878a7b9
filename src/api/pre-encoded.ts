import type { ServiceDefinition } from '@grpc/grpc-js';

const BYTES = Symbol('flotilla.preEncoded');

/**
 * A response whose protobuf bytes are already written (the engine writes large listings a slice
 * at a time, handing the event loop back in between; see EngineApi.listUnits). The gRPC server
 * sends the bytes as they are (see `servingPreEncoded`); anyone else reading the object gets its
 * fields, decoded from the bytes on first access, so every layer between the engine and the
 * server (router, read-only view) passes it on unchanged.
 */
export function preEncoded<T extends object>(bytes: Uint8Array, decode: (b: Uint8Array) => T): T {
  let decoded: T | undefined;
  const fields = (): T => (decoded ??= decode(bytes));
  return new Proxy({} as T, {
    get: (_t, key) => {
      if (key === BYTES) return bytes;
      // Promise resolution asks every value for `then`; no message has one, so do not decode.
      if (key === 'then') return undefined;
      return Reflect.get(fields(), key);
    },
    has: (_t, key) => Reflect.has(fields(), key),
    ownKeys: () => Reflect.ownKeys(fields()),
    getOwnPropertyDescriptor: (_t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(fields(), key);
      return d && { ...d, configurable: true };
    },
    getPrototypeOf: () => Object.prototype,
  });
}

/** The bytes of a `preEncoded` response, or undefined for an ordinary object. */
export function preEncodedBytes(value: unknown): Uint8Array | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const b = (value as Record<symbol, unknown>)[BYTES];
  return b instanceof Uint8Array ? b : undefined;
}

/** The service definition with every response serializer sending pre-encoded bytes as they are. */
export function servingPreEncoded<S extends ServiceDefinition>(service: S): S {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    out[name] = {
      ...method,
      responseSerialize: (value: unknown): Buffer => {
        const b = preEncodedBytes(value);
        return b
          ? Buffer.from(b.buffer, b.byteOffset, b.byteLength)
          : method.responseSerialize(value);
      },
    };
  }
  return out as S;
}
