import { describe, expect, test } from "bun:test";
import {
  ConfigError,
  DEFAULT_ANTHROPIC_BASE_URL,
  DEFAULT_ANTHROPIC_MODEL,
  loadConfig,
  type Env,
} from "../src/config.ts";
import { MemoryLogger, SECRET_MARKERS, SECRETS } from "./helpers.ts";

describe("loadConfig", () => {
  test("the release /health reports: NIXFLY_RELEASE, else FLY_IMAGE_REF, else empty", () => {
    const image = "registry.fly.io/oneshot:nix-abc";
    expect(loadConfig({}).release).toBe("");
    expect(loadConfig({ FLY_IMAGE_REF: image }).release).toBe(image);
    expect(loadConfig({ FLY_IMAGE_REF: image, NIXFLY_RELEASE: "rel-1" }).release).toBe("rel-1");
    expect(loadConfig({ NIXFLY_RELEASE: "  " }).release).toBe("");
  });

  test("defaults", () => {
    const config = loadConfig({}, new MemoryLogger());
    expect(config.port).toBe(3000);
    expect(config.hostname).toBe("0.0.0.0");
    expect(config.provider).toBe("echo");
    expect(config.configuredProviders).toEqual([]);
    expect(config.claude.accessToken).toBeUndefined();
    expect(config.claude.baseUrl).toBe(DEFAULT_ANTHROPIC_BASE_URL);
    expect(config.claude.model).toBe(DEFAULT_ANTHROPIC_MODEL);
  });

  test("reads PORT, AI_PROVIDER, ANTHROPIC_* settings", () => {
    const config = loadConfig(
      {
        PORT: "8080",
        AI_PROVIDER: "claude",
        ANTHROPIC_BASE_URL: "http://127.0.0.1:9999/",
        ANTHROPIC_MODEL: "claude-test",
        CLAUDE_ACCESS_TOKEN: SECRETS.CLAUDE_ACCESS_TOKEN,
      },
      new MemoryLogger(),
    );
    expect(config.port).toBe(8080);
    expect(config.provider).toBe("claude");
    expect(config.claude.baseUrl).toBe("http://127.0.0.1:9999");
    expect(config.claude.model).toBe("claude-test");
    expect(config.claude.accessToken).toBe(SECRETS.CLAUDE_ACCESS_TOKEN);
  });

  test("unknown AI_PROVIDER is refused, naming the valid values", () => {
    expect(() => loadConfig({ AI_PROVIDER: "openai" })).toThrow(ConfigError);
    expect(() => loadConfig({ AI_PROVIDER: "openai" })).toThrow(/echo, claude/);
  });

  test("invalid PORT is refused", () => {
    for (const port of ["abc", "-1", "70000", "80.5"]) {
      expect(() => loadConfig({ PORT: port })).toThrow(ConfigError);
    }
  });

  test("detects exactly the configured providers, sorted", () => {
    const logger = new MemoryLogger();
    expect(loadConfig({ ...SECRETS }, logger).configuredProviders).toEqual([
      "claude",
      "cursor",
      "github",
      "google",
    ]);
    const detect = (env: Env) => loadConfig(env, logger).configuredProviders;
    expect(detect({ GH_TOKEN: SECRETS.GH_TOKEN })).toEqual(["github"]);
    expect(detect({ CLAUDE_ACCESS_TOKEN: "", GH_TOKEN: "  " })).toEqual([]);
    expect(logger.lines).toEqual([]);
  });

  test("malformed credential JSON is left out with a warning naming only the variable", () => {
    const logger = new MemoryLogger();
    const config = loadConfig(
      {
        GOOGLE_APPLICATION_CREDENTIALS_JSON: "{not json google-SECRET-a9b8c7",
        CURSOR_AUTH_JSON: "cursor-SECRET-123abc",
        GH_TOKEN: SECRETS.GH_TOKEN,
      },
      logger,
    );
    expect(config.configuredProviders).toEqual(["github"]);
    expect(logger.lines).toHaveLength(2);
    expect(logger.lines.some((l) => l.includes("GOOGLE_APPLICATION_CREDENTIALS_JSON"))).toBe(true);
    expect(logger.lines.some((l) => l.includes("CURSOR_AUTH_JSON"))).toBe(true);
    for (const line of logger.lines) {
      for (const secret of SECRET_MARKERS) expect(line).not.toContain(secret);
    }
  });
});
