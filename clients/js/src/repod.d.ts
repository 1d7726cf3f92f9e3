// Type declarations of the repod JavaScript client (src/repod.js).

/**
 * A protocol: which messages a client sends, which it receives, and what each request is
 * answered with. Each entry maps an action name to the type of its fields (a message without
 * fields may use `null` or `{}`).
 *
 * ```ts
 * type Chat = {
 *   client: { say: { text: string }; list_rooms: { mode: string } };
 *   server: { said: { from: string; text: string } };
 *   replies: { list_rooms: { rooms: string[] } };
 * };
 * const client = connect<Chat>("ws://127.0.0.1:5072");
 * client.send("say", { text: "hi" });       // checked
 * client.on("said", (m) => m.from);          // m: { from, text, action: "said" }
 * const r = await client.request("list_rooms", { mode: "ffa" }); // r: { rooms: string[] }
 * ```
 */
export interface Protocol {
  client: { [action: string]: object | null };
  server: { [action: string]: object | null };
  replies: { [action: string]: unknown };
}

/** A protocol that allows every action with any fields: the default of an untyped client. */
export interface AnyProtocol extends Protocol {
  client: { [action: string]: any };
  server: { [action: string]: any };
  replies: { [action: string]: any };
}

/** The events the client raises itself, with their fields. */
export interface BuiltinEvents {
  /** The WebSocket is open; the server has not greeted yet. */
  socketConnect: {};
  /** The server's greeting: it accepted this connection. Once, after `socketConnect`. */
  connected: {};
  /** Something failed: the connection could not be made, or a message could not be decoded,
   * or the server sent an error message. */
  error: { message: string };
  /** The connection ended; once, last. `reason` is "closed by client", "closed by peer",
   * "connection lost", "cannot connect to …", or "closed by peer (code N…)". */
  disconnected: { reason: string };
}

/** The fields of a message type, with `null` (a message without fields) as `{}`. */
export type Fields<T> = [T] extends [null] ? {} : T;

/** Everything a handler can be registered for under protocol `P`. */
export type EventName<P extends Protocol> = (keyof P["server"] | keyof BuiltinEvents) & string;

/** What a handler of `action` receives: the fields plus `action` (and `rid` if the server set one). */
export type Received<P extends Protocol, A extends string> = (A extends keyof P["server"]
  ? Fields<P["server"][A]>
  : A extends keyof BuiltinEvents
    ? BuiltinEvents[A]
    : never) & { action: A };

/** Sending actions whose fields may be left out: those without required fields. */
type FieldsArg<T> = {} extends Fields<T> ? [fields?: Fields<T>] : [fields: Fields<T>];

/** The actions of `P` that are requests (have a reply type) and that the client may send. */
export type RequestName<P extends Protocol> = keyof P["replies"] & keyof P["client"] & string;

/** What the fallback receives: any message, with its action (`""` for one without). */
export interface AnyMessage {
  action: string;
  [field: string]: unknown;
}

/** A WebSocket constructor: the browser's, Node 22's global one, or the `ws` package's. */
export interface WebSocketConstructor {
  new (url: string | URL): any;
}

export interface ClientOptions {
  /** The WebSocket implementation; default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** The default deadline of `request`, in milliseconds; default 10 000. */
  requestTimeout?: number;
  /** The largest payload sent or accepted, in bytes; default 1 MiB (a repod server's default). */
  maxPayload?: number;
  /** How many messages `send` keeps while the connection opens; default 1024. */
  maxPending?: number;
}

export interface RequestOptions {
  /** The deadline of this request, in milliseconds. */
  timeout?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS: number;
export const DEFAULT_MAX_PAYLOAD: number;
export const DEFAULT_MAX_PENDING: number;

/** Why a request failed. */
export class RequestError extends Error {
  constructor(kind: RequestError["kind"], message: string);
  /** `remote`: the server answered with an error (its text is `message`); `timeout`: no reply
   * in time; `disconnected`: the connection ended first; `send`: the request was not sent. */
  readonly kind: "timeout" | "remote" | "disconnected" | "send";
}

/** One connection to a repod server, typed by its protocol `P`. */
export class Client<P extends Protocol = AnyProtocol> {
  constructor(options?: ClientOptions);
  /** Opens the connection (once per client). */
  connect(url: string | URL): this;
  /** Whether the WebSocket is open. */
  readonly isConnected: boolean;
  /** Whether the server's `connected` greeting has arrived. */
  readonly isGreeted: boolean;
  /** Registers a handler; returns a function removing it. */
  on<A extends EventName<P>>(action: A, handler: (message: Received<P, A>, client: this) => void): () => void;
  /** Sets the fallback for actions without a handler (`null` removes it). */
  onMessage(handler: ((message: AnyMessage, client: this) => void) | null): void;
  /** Sends a message; `false` if the connection is over or its pending queue is full. */
  send<A extends keyof P["client"] & string>(action: A, ...fields: FieldsArg<P["client"][A]>): boolean;
  /** Sends a request and resolves with its reply value. */
  request<A extends RequestName<P>>(
    action: A,
    fields: Fields<P["client"][A]>,
    options?: RequestOptions,
  ): Promise<P["replies"][A]>;
  /** Closes the connection after what was sent; `disconnected` follows. */
  close(): void;
}

/** Creates a client typed by `P` and connects it to `url`. */
export function connect<P extends Protocol = AnyProtocol>(url: string | URL, options?: ClientOptions): Client<P>;
