defmodule Web.Router do
  @moduledoc """
  Routes requests to the two endpoints:

    * `GET /health` - liveness, which release this is, and whether the ai-server answers
    * `POST /chat` - forwards a JSON object to the ai-server's `/chat`

  Handlers return `{status, json_iodata}`; see `Web.Server`.
  """
  alias Web.{AIClient, ChatLog, JSON}
  require Logger

  @doc """
  Builds a `Web.Server` handler from the `:ai_server_url`, `:data_dir`,
  `:chat_timeout` (ms, default 30 s) and `:release` options.
  """
  @spec handler(keyword) :: (Web.HTTP.request() -> {pos_integer, iodata})
  def handler(opts) do
    config = %{
      ai_server_url: Keyword.get(opts, :ai_server_url, "http://localhost:3000"),
      data_dir: Keyword.get(opts, :data_dir),
      chat_timeout: Keyword.get(opts, :chat_timeout, 30_000),
      release: Keyword.get(opts, :release, "")
    }

    &call(&1, config)
  end

  @doc false
  def call(%{method: "GET", path: "/health"}, config) do
    ai_server = if AIClient.healthy?(config.ai_server_url), do: "reachable", else: "unreachable"
    json(200, %{status: "ok", service: "web", release: config.release, ai_server: ai_server})
  end

  def call(%{method: "POST", path: "/chat", body: body}, config), do: chat(body, config)
  def call(%{path: "/health"}, _config), do: method_not_allowed("GET")
  def call(%{path: "/chat"}, _config), do: method_not_allowed("POST")
  def call(_request, _config), do: json(404, %{error: "not found"})

  defp chat(body, config) do
    case JSON.decode(body) do
      {:ok, request} when is_map(request) -> forward_chat(body, request, config)
      {:ok, _other} -> json(400, %{error: "request body must be a JSON object"})
      {:error, reason} -> json(400, %{error: "invalid JSON body", detail: reason})
    end
  end

  defp forward_chat(body, request, config) do
    # The original bytes are forwarded, not a re-encoding of `request`.
    case AIClient.chat(config.ai_server_url, body, config.chat_timeout) do
      {:ok, status, response_body} ->
        case JSON.decode(response_body) do
          {:ok, response} ->
            if status in 200..299 and config.data_dir do
              ChatLog.append(config.data_dir, request, response)
            end

            {status, response_body}

          {:error, _reason} ->
            Logger.warning("ai-server answered /chat with status #{status} and a non-JSON body")
            json(502, %{error: "invalid response from ai-server", ai_server_status: status})
        end

      {:error, :timeout} ->
        json(504, %{error: "ai-server timed out"})

      {:error, reason} ->
        json(502, %{error: "ai-server unreachable", detail: AIClient.describe_error(reason)})
    end
  end

  defp method_not_allowed(allowed) do
    json(405, %{error: "method not allowed", allowed: [allowed]})
  end

  defp json(status, term), do: {status, JSON.encode!(term)}
end
