/**
 * The small part of the Node-RED runtime API the nodes use, typed here rather than taken
 * from @types/node-red (which describes Node-RED 1.3 and pulls Express types into our
 * declarations). Everything named here exists unchanged in Node-RED 4.x and 5.x.
 */

/** A message as it travels through a flow. */
export interface NodeMessage {
  payload?: unknown;
  topic?: string;
  _msgid?: string;
  [key: string]: unknown;
}

/** `node.status()` argument: fill colour, shape and a short text (≤ ~20 chars). */
export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type SendFunction = (msg: NodeMessage | Array<NodeMessage | null> | null) => void;
export type DoneFunction = (err?: Error) => void;

/** A runtime node instance (`this` in a node constructor). */
export interface RedNode {
  readonly id: string;
  readonly type: string;
  readonly name?: string;
  readonly z?: string;
  on(
    event: 'input',
    handler: (msg: NodeMessage, send: SendFunction, done: DoneFunction) => void,
  ): void;
  on(event: 'close', handler: (removed: boolean, done: () => void) => void): void;
  send(msg: NodeMessage | Array<NodeMessage | null> | null): void;
  status(status: NodeStatus | Record<string, never>): void;
  log(msg: unknown): void;
  warn(msg: unknown): void;
  /** With a message object the error reaches Catch nodes; without one it is only logged. */
  error(err: unknown, msg?: NodeMessage): void;
}

/** The properties a node was configured with in the editor (all strings unless typed). */
export interface NodeConfig {
  readonly id: string;
  readonly type: string;
  readonly name?: string;
  readonly z?: string;
  readonly [key: string]: unknown;
}

/** Minimal Express-like request/response for admin endpoints. */
export interface AdminRequest {
  readonly params: Record<string, string>;
  readonly query: Record<string, unknown>;
}
export interface AdminResponse {
  status(code: number): AdminResponse;
  json(body: unknown): void;
}
export type AdminHandler = (req: AdminRequest, res: AdminResponse, next?: () => void) => void;

/** The `RED` object handed to a node module. */
export interface RedAPI {
  nodes: {
    createNode(node: object, config: NodeConfig): void;
    getNode(id: string): unknown;
    registerType<T extends RedNode>(
      type: string,
      constructor: (this: T, config: NodeConfig) => void,
      options?: object,
    ): void;
  };
  httpAdmin: {
    get(path: string, ...handlers: AdminHandler[]): void;
  };
  auth: {
    needsPermission(permission: string): AdminHandler;
  };
  settings: Record<string, unknown>;
  /** Runtime events (`flows:started`, ...). */
  events?: {
    on?(event: string, listener: (...args: unknown[]) => void): void;
    once(event: string, listener: (...args: unknown[]) => void): void;
    off?(event: string, listener: (...args: unknown[]) => void): void;
  };
  util: {
    evaluateNodeProperty(
      value: unknown,
      type: string,
      node: RedNode,
      msg: NodeMessage,
      callback?: (err: Error | null | undefined, result: unknown) => void,
    ): unknown;
  };
  /** i18n lookup in this module's catalogue (`iio-capture.status.streaming`). */
  _(key: string, substitutions?: Record<string, unknown>): string;
}

/** A node constructor's `this`, with the node's own fields added by the constructor. */
export type NodeInit<T extends object> = RedNode & T;
