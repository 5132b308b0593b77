import type { Server } from "bun";
import { startServer, type AppOptions, type Logger } from "../src/app.ts";
import { loadConfig, type Config, type Env } from "../src/config.ts";

export const SECRETS = {
  CLAUDE_ACCESS_TOKEN: "sk-test-claude-SECRET-4f1c9a",
  GH_TOKEN: "ghp_test-github-SECRET-77d0e2",
  GOOGLE_APPLICATION_CREDENTIALS_JSON: JSON.stringify({ private_key: "google-SECRET-a9b8c7" }),
  CURSOR_AUTH_JSON: JSON.stringify({ token: "cursor-SECRET-123abc" }),
} as const;

/** Every distinctive secret substring, for leak assertions. */
export const SECRET_MARKERS = [
  SECRETS.CLAUDE_ACCESS_TOKEN,
  SECRETS.GH_TOKEN,
  "google-SECRET-a9b8c7",
  "cursor-SECRET-123abc",
];

export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  info(line: string): void {
    this.lines.push(line);
  }
  error(line: string): void {
    this.lines.push(line);
  }
  warn(line: string): void {
    this.lines.push(line);
  }
}

export function testConfig(env: Env, overrides: Partial<Config> = {}): Config {
  const config = loadConfig(env, { warn: () => undefined });
  return { ...config, port: 0, hostname: "127.0.0.1", ...overrides };
}

export interface TestResponse {
  status: number;
  /** Parsed JSON (every response of the service is JSON). */
  body: unknown;
  text: string;
  headers: Headers;
}

export interface TestServer {
  server: Server<undefined>;
  url: string;
  logger: MemoryLogger;
  /** Every response body text seen through `request`. */
  bodies: string[];
  request(path: string, init?: RequestInit): Promise<TestResponse>;
  stop(): Promise<void>;
}

export function startTestServer(config: Config, options: AppOptions = {}): TestServer {
  const logger = new MemoryLogger();
  const server = startServer(config, { logger, ...options });
  const url = `http://127.0.0.1:${server.port}`;
  const bodies: string[] = [];
  return {
    server,
    url,
    logger,
    bodies,
    async request(path, init) {
      const response = await fetch(`${url}${path}`, init);
      const text = await response.text();
      bodies.push(text);
      const body = JSON.parse(text) as unknown;
      return { status: response.status, body, text, headers: response.headers };
    },
    async stop() {
      await server.stop(true);
    },
  };
}

export function postJson(body: unknown): RequestInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  };
}

/**
 * Polls `check` until it returns true (a rejection counts as "not yet") or
 * the deadline passes. `fatal` may return a reason to stop polling at once.
 */
export async function waitFor(
  check: () => Promise<boolean>,
  { timeoutMs = 15_000, fatal }: { timeoutMs?: number; fatal?: () => string | undefined } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = fatal?.();
    if (reason !== undefined) throw new Error(reason);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await Bun.sleep(25);
  }
}
