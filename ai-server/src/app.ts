import type { Server } from "bun";
import { parseChatRequest } from "./chat-request.ts";
import type { Config } from "./config.ts";
import { createProvider, ProviderError, type Provider } from "./providers/index.ts";

export const MAX_BODY_BYTES = 1024 * 1024; // 1 MiB

export interface Logger {
  info(line: string): void;
  error(line: string): void;
}

export const consoleLogger: Logger = {
  info: (line) => console.log(line),
  error: (line) => console.error(line),
};

export interface AppOptions {
  logger?: Logger;
  /** Override the provider chosen from `config.provider` (tests). */
  provider?: Provider;
}

export interface App {
  fetch(request: Request): Promise<Response>;
}

function json(status: number, body: unknown, headers?: Record<string, string>): Response {
  return Response.json(body, { status, ...(headers ? { headers } : {}) });
}

function methodNotAllowed(allowed: readonly string[]): Response {
  return json(405, { error: "method not allowed", allowed }, { allow: allowed.join(", ") });
}

/** Reads the body as text, or returns null once it exceeds `limit` bytes. */
async function readBodyLimited(request: Request, limit: number): Promise<string | null> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) return null;
  if (request.body === null) return "";

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : "non-Error value thrown";
}

/**
 * Builds the request handler. Pure with respect to the environment: all
 * settings come from `config`, so tests can construct it directly.
 */
export function createApp(config: Config, options: AppOptions = {}): App {
  const logger = options.logger ?? consoleLogger;
  const provider = options.provider ?? createProvider(config);
  const health = {
    status: "ok",
    service: "ai-server",
    release: config.release,
    providers: [...config.configuredProviders],
    provider: config.provider,
  };

  async function handleChat(request: Request): Promise<Response> {
    const text = await readBodyLimited(request, MAX_BODY_BYTES);
    if (text === null) {
      return json(413, { error: `request body too large (limit ${MAX_BODY_BYTES} bytes)` });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return json(400, { error: "invalid JSON body" });
    }
    const parsed = parseChatRequest(body);
    if (!parsed.ok) {
      return json(400, { error: parsed.error });
    }
    try {
      return json(200, await provider.chat(parsed.request.message));
    } catch (err) {
      if (err instanceof ProviderError) {
        logger.error(`chat via ${provider.name} failed: ${err.logDetail}`);
        return json(err.status, err.body);
      }
      throw err;
    }
  }

  async function route(request: Request, pathname: string): Promise<Response> {
    switch (pathname) {
      case "/health":
        // HEAD is answered like GET; the server drops the body.
        return request.method === "GET" || request.method === "HEAD"
          ? json(200, health)
          : methodNotAllowed(["GET", "HEAD"]);
      case "/chat":
        return request.method === "POST" ? handleChat(request) : methodNotAllowed(["POST"]);
      default:
        return json(404, { error: "not found" });
    }
  }

  return {
    async fetch(request: Request): Promise<Response> {
      const started = performance.now();
      let pathname = "?";
      let response: Response;
      try {
        // Only the path is logged: query strings could carry secrets.
        pathname = new URL(request.url).pathname;
        response = await route(request, pathname);
      } catch (err) {
        logger.error(`error handling ${request.method} ${pathname}: ${describeError(err)}`);
        response = json(500, { error: "internal error" });
      }
      const ms = (performance.now() - started).toFixed(1);
      logger.info(`${request.method} ${pathname} ${response.status} ${ms}ms`);
      return response;
    },
  };
}

/** Starts the HTTP server for `config` (port 0 picks a free port). */
export function startServer(config: Config, options: AppOptions = {}): Server<undefined> {
  const logger = options.logger ?? consoleLogger;
  const app = createApp(config, options);
  return Bun.serve({
    port: config.port,
    hostname: config.hostname,
    development: false,
    fetch: (request) => app.fetch(request),
    // Backstop only: app.fetch already turns handler errors into 500s.
    error(err) {
      logger.error(`unhandled server error: ${describeError(err)}`);
      return json(500, { error: "internal error" });
    },
  });
}
