/**
 * Configuration: everything the service reads from the environment is read
 * here, once, into a plain object. The rest of the code (and the tests) only
 * ever see a `Config`, never `process.env`.
 */

export const PROVIDER_NAMES = ["echo", "claude"] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

export const DEFAULT_PORT = 3000;
/**
 * All IPv4 interfaces. Note: Fly.io's private network (6PN, `*.internal`) is
 * IPv6-only, so reaching the service over it would need `::` instead.
 */
export const DEFAULT_HOSTNAME = "0.0.0.0";
export const DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com";
export const DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-5";
export const DEFAULT_CLAUDE_TIMEOUT_MS = 60_000;

export interface ClaudeConfig {
  /** From CLAUDE_ACCESS_TOKEN; undefined when unset or blank. */
  accessToken: string | undefined;
  /** From ANTHROPIC_BASE_URL, without trailing slashes. */
  baseUrl: string;
  /** From ANTHROPIC_MODEL. */
  model: string;
  /** Upstream request timeout (not read from the environment). */
  timeoutMs: number;
}

export interface Config {
  port: number;
  hostname: string;
  /** Active provider for POST /chat (AI_PROVIDER). */
  provider: ProviderName;
  /** Names (never values) of the credentials that are configured, sorted. */
  configuredProviders: string[];
  claude: ClaudeConfig;
  /**
   * Which release this process is, as GET /health reports it: NIXFLY_RELEASE (set by nixfly on local and
   * ssh targets, fresh for every start), else FLY_IMAGE_REF (set by Fly in every Machine), else "".
   * A deploy's health gate insists on it, so it never mistakes an older process for the new release.
   */
  release: string;
}

export type Env = Record<string, string | undefined>;

export interface ConfigLogger {
  warn(line: string): void;
}

/** Raised for configuration the process must refuse to start with. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function nonBlank(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value.trim() === "" ? undefined : value;
}

function isProviderName(value: string): value is ProviderName {
  return (PROVIDER_NAMES as readonly string[]).includes(value);
}

function parsePort(raw: string | undefined): number {
  const value = nonBlank(raw)?.trim();
  if (value === undefined) return DEFAULT_PORT;
  const port = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`invalid PORT "${value}": expected an integer between 0 and 65535`);
  }
  return port;
}

function parseProvider(raw: string | undefined): ProviderName {
  const value = nonBlank(raw)?.trim() ?? "echo";
  if (!isProviderName(value)) {
    throw new ConfigError(
      `invalid AI_PROVIDER "${value}": valid values are ${PROVIDER_NAMES.join(", ")}`,
    );
  }
  return value;
}

/**
 * Which credentials are present, by provider name. JSON credentials must
 * parse; a malformed one is left out with a warning that names only the
 * variable (its content may be a secret).
 */
export function detectConfiguredProviders(env: Env, logger: ConfigLogger): string[] {
  const found: string[] = [];
  const plain: ReadonlyArray<readonly [name: string, variable: string]> = [
    ["claude", "CLAUDE_ACCESS_TOKEN"],
    ["github", "GH_TOKEN"],
  ];
  const json: ReadonlyArray<readonly [name: string, variable: string]> = [
    ["google", "GOOGLE_APPLICATION_CREDENTIALS_JSON"],
    ["cursor", "CURSOR_AUTH_JSON"],
  ];
  for (const [name, variable] of plain) {
    if (nonBlank(env[variable]) !== undefined) found.push(name);
  }
  for (const [name, variable] of json) {
    const value = nonBlank(env[variable]);
    if (value === undefined) continue;
    try {
      JSON.parse(value);
      found.push(name);
    } catch {
      logger.warn(`warning: ${variable} is set but is not valid JSON; ignoring it`);
    }
  }
  return found.sort();
}

export function loadConfig(
  env: Env,
  logger: ConfigLogger = { warn: (line) => console.warn(line) },
): Config {
  const provider = parseProvider(env.AI_PROVIDER);
  const port = parsePort(env.PORT);
  const baseUrl = (nonBlank(env.ANTHROPIC_BASE_URL)?.trim() ?? DEFAULT_ANTHROPIC_BASE_URL).replace(
    /\/+$/,
    "",
  );
  return {
    port,
    hostname: DEFAULT_HOSTNAME,
    provider,
    configuredProviders: detectConfiguredProviders(env, logger),
    claude: {
      accessToken: nonBlank(env.CLAUDE_ACCESS_TOKEN)?.trim(),
      baseUrl,
      model: nonBlank(env.ANTHROPIC_MODEL)?.trim() ?? DEFAULT_ANTHROPIC_MODEL,
      timeoutMs: DEFAULT_CLAUDE_TIMEOUT_MS,
    },
    release: nonBlank(env.NIXFLY_RELEASE)?.trim() ?? nonBlank(env.FLY_IMAGE_REF)?.trim() ?? "",
  };
}
