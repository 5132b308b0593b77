import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import type { Server } from "bun";
import {
  postJson,
  SECRET_MARKERS,
  SECRETS,
  startTestServer,
  testConfig,
  type TestServer,
} from "./helpers.ts";

interface Captured {
  method: string;
  path: string;
  headers: Headers;
  body: unknown;
}

type StubBehaviour = (captured: Captured) => Response | Promise<Response>;

const TOKEN = SECRETS.CLAUDE_ACCESS_TOKEN;

describe("claude provider against a stub Anthropic API", () => {
  let stub: Server<undefined>;
  let stubUrl: string;
  let behaviour: StubBehaviour;
  const captured: Captured[] = [];
  const servers: TestServer[] = [];
  /** Releases requests the stub is deliberately holding (timeout test). */
  let releaseHeld: () => void = () => undefined;

  beforeAll(() => {
    stub = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      development: false,
      async fetch(request) {
        const entry: Captured = {
          method: request.method,
          path: new URL(request.url).pathname,
          headers: request.headers,
          body: await request.json(),
        };
        captured.push(entry);
        return behaviour(entry);
      },
    });
    stubUrl = `http://127.0.0.1:${stub.port}`;
  });

  afterEach(async () => {
    releaseHeld();
    for (const srv of servers.splice(0)) {
      await srv.stop();
      // The token must never appear in a response body or a log line.
      for (const text of [...srv.bodies, ...srv.logger.lines]) {
        for (const secret of SECRET_MARKERS) expect(text).not.toContain(secret);
      }
    }
    captured.length = 0;
  });

  afterAll(async () => {
    await stub.stop(true);
  });

  function start(env: Record<string, string>, timeoutMs?: number): TestServer {
    const config = testConfig({ AI_PROVIDER: "claude", ANTHROPIC_BASE_URL: stubUrl, ...env });
    if (timeoutMs !== undefined) config.claude.timeoutMs = timeoutMs;
    const srv = startTestServer(config);
    servers.push(srv);
    return srv;
  }

  test("sends bearer token, version header and the right body; extracts the reply", async () => {
    behaviour = () =>
      Response.json({
        id: "msg_1",
        type: "message",
        role: "assistant",
        model: "claude-stub-model",
        content: [
          { type: "text", text: "Hello, " },
          { type: "tool_use", id: "t1", name: "x", input: {} },
          { type: "text", text: "world!" },
        ],
        stop_reason: "end_turn",
      });
    const srv = start({ CLAUDE_ACCESS_TOKEN: TOKEN, ANTHROPIC_MODEL: "claude-test-model" });

    const res = await srv.request("/chat", postJson({ message: "Say hi" }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      provider: "claude",
      reply: "Hello, world!",
      model: "claude-stub-model",
    });

    expect(captured).toHaveLength(1);
    const [req] = captured;
    expect(req?.method).toBe("POST");
    expect(req?.path).toBe("/v1/messages");
    expect(req?.headers.get("authorization")).toBe(`Bearer ${TOKEN}`);
    expect(req?.headers.get("anthropic-version")).toBe("2023-06-01");
    expect(req?.headers.get("content-type")).toContain("application/json");
    expect(req?.body).toEqual({
      model: "claude-test-model",
      max_tokens: 1024,
      messages: [{ role: "user", content: "Say hi" }],
    });
  });

  test("default model is claude-sonnet-4-5 and is reported when upstream omits it", async () => {
    behaviour = () => Response.json({ content: [{ type: "text", text: "ok" }] });
    const srv = start({ CLAUDE_ACCESS_TOKEN: TOKEN });
    const res = await srv.request("/chat", postJson({ message: "hi" }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ provider: "claude", reply: "ok", model: "claude-sonnet-4-5" });
    expect((captured[0]?.body as { model: string }).model).toBe("claude-sonnet-4-5");
  });

  test("upstream 500 → 502 with status; upstream body is not forwarded", async () => {
    behaviour = (c) =>
      Response.json(
        { error: "boom", echoedAuthorization: c.headers.get("authorization") },
        { status: 500 },
      );
    const srv = start({ CLAUDE_ACCESS_TOKEN: TOKEN });
    const res = await srv.request("/chat", postJson({ message: "hi" }));
    expect(res.status).toBe(502);
    expect(res.body).toEqual({ error: "claude upstream error", status: 500 });
    expect(res.text).not.toContain(TOKEN);
    expect(res.text).not.toContain("boom");
  });

  test("upstream 401 → 502 carrying the upstream status", async () => {
    behaviour = () => Response.json({ type: "error" }, { status: 401 });
    const srv = start({ CLAUDE_ACCESS_TOKEN: TOKEN });
    const res = await srv.request("/chat", postJson({ message: "hi" }));
    expect(res.status).toBe(502);
    expect(res.body).toEqual({ error: "claude upstream error", status: 401 });
  });

  test("upstream 200 with a non-JSON body → 502", async () => {
    behaviour = () => new Response("not json", { status: 200 });
    const srv = start({ CLAUDE_ACCESS_TOKEN: TOKEN });
    const res = await srv.request("/chat", postJson({ message: "hi" }));
    expect(res.status).toBe(502);
    expect((res.body as { error: string }).error).toBe("claude upstream error");
  });

  test("network error → 502", async () => {
    // A port that was just free: bind, note the port, release it.
    const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
    const deadUrl = `http://127.0.0.1:${probe.port}`;
    await probe.stop(true);
    const srv = start({ CLAUDE_ACCESS_TOKEN: TOKEN, ANTHROPIC_BASE_URL: deadUrl });
    const res = await srv.request("/chat", postJson({ message: "hi" }));
    expect(res.status).toBe(502);
    expect(res.body).toEqual({
      error: "claude upstream error",
      status: 0,
      reason: "network error",
    });
  });

  test("upstream timeout → 502 (timeout)", async () => {
    const held = new Promise<void>((resolve) => {
      releaseHeld = resolve;
    });
    behaviour = async () => {
      await held;
      return Response.json({ content: [] });
    };
    const srv = start({ CLAUDE_ACCESS_TOKEN: TOKEN }, 100);
    const res = await srv.request("/chat", postJson({ message: "hi" }));
    expect(res.status).toBe(502);
    expect(res.body).toEqual({ error: "claude upstream error", status: 0, reason: "timeout" });
  });

  test("missing token → 503 naming CLAUDE_ACCESS_TOKEN, upstream not called", async () => {
    behaviour = () => Response.json({ content: [{ type: "text", text: "unreachable" }] });
    const srv = start({});
    const res = await srv.request("/chat", postJson({ message: "hi" }));
    expect(res.status).toBe(503);
    expect((res.body as { error: string }).error).toContain("CLAUDE_ACCESS_TOKEN");
    expect(captured).toHaveLength(0);

    const health = await srv.request("/health");
    expect(health.body).toEqual({
      status: "ok",
      service: "ai-server",
      release: "",
      providers: [],
      provider: "claude",
    });
  });
});
