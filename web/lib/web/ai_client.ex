defmodule Web.AIClient do
  @moduledoc """
  Talks to the ai-server over plain HTTP with `:httpc` (part of `:inets`).
  """

  @health_timeout 1_000

  @doc "True if `GET <base_url>/health` answers 2xx within #{@health_timeout} ms."
  @spec healthy?(String.t()) :: boolean
  def healthy?(base_url) do
    case request(:get, {url(base_url, "/health"), headers()}, @health_timeout) do
      {:ok, status, _body} -> status in 200..299
      {:error, _reason} -> false
    end
  end

  @doc """
  POSTs the JSON `body` to `<base_url>/chat`; returns the status and raw body,
  or `{:error, :timeout}` after `timeout` ms.
  """
  @spec chat(String.t(), binary, timeout) :: {:ok, pos_integer, binary} | {:error, term}
  def chat(base_url, body, timeout) do
    request(:post, {url(base_url, "/chat"), headers(), ~c"application/json", body}, timeout)
  end

  @doc "Short, log- and JSON-friendly description of an `:httpc` error reason."
  @spec describe_error(term) :: String.t()
  # {:failed_connect, [{:to_address, _}, {:inet, _, :econnrefused}]}
  def describe_error({:failed_connect, info}) do
    case List.keyfind(info, :inet, 0) do
      {:inet, _, reason} -> describe_error(reason)
      nil -> "failed to connect"
    end
  end

  def describe_error(reason) when is_atom(reason), do: Atom.to_string(reason)
  def describe_error(reason), do: inspect(reason)

  defp request(method, request, timeout) do
    http_options = [
      timeout: timeout,
      connect_timeout: min(timeout, 5_000),
      autoredirect: false
    ]

    case :httpc.request(method, request, http_options, body_format: :binary) do
      {:ok, {{_version, status, _reason}, _headers, body}} -> {:ok, status, body}
      {:error, reason} -> {:error, reason}
    end
  end

  # One connection per request: avoids reusing a keep-alive connection that
  # the ai-server already closed, which fails non-idempotent POSTs.
  defp headers, do: [{~c"connection", ~c"close"}]

  defp url(base_url, path), do: String.to_charlist(base_url <> path)
end
