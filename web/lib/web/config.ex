defmodule Web.Config do
  @moduledoc """
  Reads the runtime configuration from environment variables.

  Called when the application starts (not at compile time), so one release
  build can be configured per deployment:

    * `PORT` - TCP port to listen on (default `4000`)
    * `AI_SERVER_URL` - base URL of the ai-server (default `http://localhost:3000`)
    * `DATA_DIR` - if set, successful chats are appended to `$DATA_DIR/chats.jsonl`
    * `NIXFLY_RELEASE`, else `FLY_IMAGE_REF` - which release this is, reported by `GET /health`
      (nixfly sets the first on local and ssh targets, Fly the second in every Machine); a deploy's
      health gate insists on it, so an older process is never taken for the new release
  """

  @default_port 4000
  @default_ai_server_url "http://localhost:3000"

  @doc "Returns `Web.Server` options built from `env` (defaults to the OS environment)."
  @spec from_env(%{optional(String.t()) => String.t()}) :: keyword
  def from_env(env \\ System.get_env()) do
    [
      port: parse_port(Map.get(env, "PORT")),
      ai_server_url: ai_server_url(Map.get(env, "AI_SERVER_URL")),
      data_dir: blank_to_nil(Map.get(env, "DATA_DIR")),
      release:
        blank_to_nil(Map.get(env, "NIXFLY_RELEASE")) ||
          blank_to_nil(Map.get(env, "FLY_IMAGE_REF")) ||
          ""
    ]
  end

  defp parse_port(value) do
    case blank_to_nil(value) do
      nil ->
        @default_port

      value ->
        case Integer.parse(value) do
          {port, ""} when port in 0..65_535 -> port
          _ -> raise ArgumentError, "PORT must be an integer in 0..65535, got: #{inspect(value)}"
        end
    end
  end

  defp ai_server_url(value) do
    (blank_to_nil(value) || @default_ai_server_url) |> String.trim_trailing("/")
  end

  defp blank_to_nil(nil), do: nil

  defp blank_to_nil(value) do
    case String.trim(value) do
      "" -> nil
      trimmed -> trimmed
    end
  end
end
