import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { SECRETS, waitFor } from "./helpers.ts";

const ROOT = join(import.meta.dir, "..");
const ENTRY = join(ROOT, "src", "index.ts");

/** A minimal environment, so the developer's real credentials never leak in. */
function baseEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", ...extra };
}

/** A port that is free right now (bind to port 0, read it, release it). */
async function freePort(): Promise<number> {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port;
  await probe.stop(true);
  if (port === undefined) throw new Error("no port assigned");
  return port;
}

describe("entry point (bun src/index.ts)", () => {
  test("unknown AI_PROVIDER: one clear stderr line and exit code 2", async () => {
    const proc = Bun.spawn([process.execPath, ENTRY], {
      cwd: ROOT,
      env: baseEnv({ AI_PROVIDER: "definitely-not-a-provider", PORT: "0" }),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).toBe(2);
    const lines = stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("AI_PROVIDER");
    expect(lines[0]).toContain("echo, claude");
  });

  const signals = ["SIGTERM", "SIGINT"] as const;
  test.each(signals)("starts, answers /health on PORT, exits 0 on %s", async (signal) => {
    const port = await freePort();
    const proc = Bun.spawn([process.execPath, ENTRY], {
      cwd: ROOT,
      env: baseEnv({ PORT: String(port), GH_TOKEN: SECRETS.GH_TOKEN, NIXFLY_RELEASE: "rel-entry" }),
      stdout: "pipe",
      stderr: "pipe",
    });
    const stdout = new Response(proc.stdout).text();
    const stderr = new Response(proc.stderr).text();
    try {
      let health: unknown;
      await waitFor(
        async () => {
          const res = await fetch(`http://127.0.0.1:${port}/health`);
          health = await res.json();
          return res.status === 200;
        },
        {
          fatal: () =>
            proc.exitCode === null ? undefined : `entry exited early with ${proc.exitCode}`,
        },
      );
      expect(health).toEqual({
        status: "ok",
        service: "ai-server",
        release: "rel-entry",
        providers: ["github"],
        provider: "echo",
      });
      expect(JSON.stringify(health)).not.toContain(SECRETS.GH_TOKEN);
    } finally {
      proc.kill(signal);
    }
    expect(await proc.exited).toBe(0);
    const out = await stdout;
    expect(out).toContain(`ai-server listening on port ${port}`);
    expect(out).toMatch(/GET \/health 200 /);
    expect(out + (await stderr)).not.toContain(SECRETS.GH_TOKEN);
  }, 20_000);
});
