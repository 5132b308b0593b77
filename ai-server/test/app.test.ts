import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createApp, MAX_BODY_BYTES } from "../src/app.ts";
import type { Provider } from "../src/providers/index.ts";
import {
  MemoryLogger,
  postJson,
  SECRET_MARKERS,
  SECRETS,
  startTestServer,
  testConfig,
  type TestServer,
} from "./helpers.ts";

describe("HTTP app (echo provider)", () => {
  let srv: TestServer;

  beforeAll(() => {
    srv = startTestServer(testConfig({ ...SECRETS }));
  });

  afterAll(async () => {
    await srv.stop();
    // No response body and no log line may ever contain a credential.
    expect(srv.bodies.length).toBeGreaterThan(0);
    for (const text of [...srv.bodies, ...srv.logger.lines]) {
      for (const secret of SECRET_MARKERS) expect(text).not.toContain(secret);
    }
  });

  test("GET /health lists exactly the configured providers, by name", async () => {
    const res = await srv.request("/health");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(res.body).toEqual({
      status: "ok",
      service: "ai-server",
      release: "",
      providers: ["claude", "cursor", "github", "google"],
      provider: "echo",
    });
    for (const secret of SECRET_MARKERS) expect(res.text).not.toContain(secret);
  });

  test("GET /health with nothing configured", async () => {
    const bare = startTestServer(testConfig({}));
    try {
      const res = await bare.request("/health");
      expect(res.body).toEqual({
        status: "ok",
        service: "ai-server",
        release: "",
        providers: [],
        provider: "echo",
      });
    } finally {
      await bare.stop();
    }
  });

  test("POST /chat echoes", async () => {
    const res = await srv.request("/chat", postJson({ message: "hello world" }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ provider: "echo", reply: "echo: hello world" });
  });

  test("malformed JSON → 400", async () => {
    const res = await srv.request("/chat", postJson("{not json"));
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: "invalid JSON body" });
  });

  test("empty body → 400 invalid JSON", async () => {
    const res = await srv.request("/chat", { method: "POST" });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: "invalid JSON body" });
  });

  test("body that is not an object → 400", async () => {
    for (const body of ["[1,2]", "null", "42", '"hi"']) {
      const res = await srv.request("/chat", postJson(body));
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: "request body must be a JSON object" });
    }
  });

  test("missing or invalid message → 400", async () => {
    for (const body of [{}, { message: "" }, { message: "   " }, { message: 7 }, { msg: "hi" }]) {
      const res = await srv.request("/chat", postJson(body));
      expect(res.status).toBe(400);
      expect((res.body as { error: string }).error).toContain("message");
    }
  });

  test("unknown path → 404 JSON", async () => {
    const res = await srv.request("/nope");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: "not found" });
  });

  test("wrong method → 405 JSON with Allow", async () => {
    const a = await srv.request("/health", { method: "POST" });
    expect(a.status).toBe(405);
    expect(a.headers.get("allow")).toBe("GET, HEAD");
    expect((a.body as { error: string }).error).toBe("method not allowed");

    const b = await srv.request("/chat");
    expect(b.status).toBe(405);
    expect(b.headers.get("allow")).toBe("POST");
    expect(b.body).toEqual({ error: "method not allowed", allowed: ["POST"] });
  });

  test("body over 1 MiB → 413 (Content-Length)", async () => {
    const big = JSON.stringify({ message: "x".repeat(MAX_BODY_BYTES) });
    const res = await srv.request("/chat", postJson(big));
    expect(res.status).toBe(413);
    expect((res.body as { error: string }).error).toContain("too large");
  });

  test("body of exactly 1 MiB is accepted", async () => {
    const prefix = '{"message":"';
    const suffix = '"}';
    const exact = prefix + "y".repeat(MAX_BODY_BYTES - prefix.length - suffix.length) + suffix;
    expect(new TextEncoder().encode(exact).byteLength).toBe(MAX_BODY_BYTES);
    const res = await srv.request("/chat", postJson(exact));
    expect(res.status).toBe(200);
  });

  test("logs one line per request with method, path, status and ms", async () => {
    const before = srv.logger.lines.length;
    await srv.request("/health?token=abc");
    const added = srv.logger.lines.slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^GET \/health 200 \d+(\.\d+)?ms$/);
  });
});

describe("createApp without a network", () => {
  test("streamed body over 1 MiB (no Content-Length) → 413", async () => {
    const app = createApp(testConfig({}), { logger: new MemoryLogger() });
    const chunk = new Uint8Array(256 * 1024).fill(0x61);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_BODY_BYTES * 2) return controller.close();
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const request = new Request("http://local/chat", { method: "POST", body });
    expect(request.headers.get("content-length")).toBeNull();
    const res = await app.fetch(request);
    expect(res.status).toBe(413);
  });

  test("a throwing provider → 500 internal error, logged, server keeps serving", async () => {
    let calls = 0;
    const provider: Provider = {
      name: "echo",
      chat() {
        calls += 1;
        return Promise.reject(new Error("boom"));
      },
    };
    const srv = startTestServer(testConfig({}), { provider });
    try {
      const res = await srv.request("/chat", postJson({ message: "hi" }));
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: "internal error" });
      expect(srv.logger.lines.some((l) => l.includes("boom"))).toBe(true);
      expect(srv.logger.lines.some((l) => /^POST \/chat 500 \d/.test(l))).toBe(true);

      const again = await srv.request("/health");
      expect(again.status).toBe(200);
      expect(calls).toBe(1);
    } finally {
      await srv.stop();
    }
  });
});
