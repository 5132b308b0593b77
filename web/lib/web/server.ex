defmodule Web.Server do
  @moduledoc """
  A minimal HTTP/1.1 server on top of `:gen_tcp`.

  The server process owns the listening socket; a linked acceptor process
  accepts connections and hands each one to its own task (see `Web.HTTP`)
  under a `Task.Supervisor`, so a crashing connection never takes the
  listener down.

  Options:

    * `:port` - port to listen on; `0` picks a free one (see `port/1`). Default 4000.
    * `:ip` - interface to bind, default `{0, 0, 0, 0}` (all IPv4 interfaces)
    * `:handler` - `(Web.HTTP.request() -> {status, iodata})`, the JSON body to
      send. Defaults to `Web.Router` configured with the options below.
    * `:ai_server_url`, `:data_dir`, `:chat_timeout` - passed to `Web.Router.handler/1`
    * `:name` - optional registered name
  """
  use GenServer
  require Logger

  @doc false
  def child_spec(opts) do
    %{id: Keyword.get(opts, :name, __MODULE__), start: {__MODULE__, :start_link, [opts]}}
  end

  @spec start_link(keyword) :: GenServer.on_start()
  def start_link(opts) do
    {gen_opts, opts} = Keyword.split(opts, [:name])
    GenServer.start_link(__MODULE__, opts, gen_opts)
  end

  @doc "Returns the port the server actually listens on (useful with `port: 0`)."
  @spec port(GenServer.server()) :: :inet.port_number()
  def port(server), do: GenServer.call(server, :port)

  @impl true
  def init(opts) do
    port = Keyword.get(opts, :port, 4000)
    handler = Keyword.get_lazy(opts, :handler, fn -> Web.Router.handler(opts) end)

    listen_opts = [
      :binary,
      active: false,
      reuseaddr: true,
      backlog: 1024,
      ip: Keyword.get(opts, :ip, {0, 0, 0, 0})
    ]

    case :gen_tcp.listen(port, listen_opts) do
      {:ok, listen} ->
        {:ok, actual_port} = :inet.port(listen)
        {:ok, tasks} = Task.Supervisor.start_link()
        # Linked: if the acceptor dies unexpectedly the server dies with it and
        # its supervisor restarts both with a fresh listening socket.
        spawn_link(fn -> accept_loop(listen, tasks, handler) end)
        Logger.info("web listening on port #{actual_port}")
        {:ok, %{listen: listen, port: actual_port}}

      {:error, reason} ->
        {:stop, {:listen_failed, port, reason}}
    end
  end

  @impl true
  def handle_call(:port, _from, state), do: {:reply, state.port, state}

  defp accept_loop(listen, tasks, handler) do
    case :gen_tcp.accept(listen) do
      {:ok, socket} ->
        start_connection(socket, tasks, handler)
        accept_loop(listen, tasks, handler)

      {:error, :closed} ->
        # The listening socket is gone: the server is shutting down.
        :ok

      {:error, reason} ->
        # E.g. :emfile under load; back off briefly instead of spinning.
        Logger.warning("accept failed: #{inspect(reason)}")
        Process.sleep(100)
        accept_loop(listen, tasks, handler)
    end
  end

  defp start_connection(socket, tasks, handler) do
    # The task waits until it owns the socket, so that the socket is closed
    # with the task (not the long-lived acceptor) if it crashes.
    start =
      Task.Supervisor.start_child(tasks, fn ->
        receive do
          :socket_ready -> Web.HTTP.serve(socket, handler)
        after
          5_000 -> :ok
        end
      end)

    with {:ok, pid} <- start,
         :ok <- :gen_tcp.controlling_process(socket, pid) do
      send(pid, :socket_ready)
    else
      _ -> :gen_tcp.close(socket)
    end
  end
end
