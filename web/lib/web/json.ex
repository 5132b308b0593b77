defmodule Web.JSON do
  @moduledoc """
  A tiny RFC 8259 JSON encoder/decoder.

  Written by hand because the app has no hex dependencies and must also build
  on Elixir 1.14, which has no built-in `JSON` module.

  Decoding: objects become maps with string keys, arrays lists, `null` nil,
  numbers integers when they have neither fraction nor exponent, else floats.
  Encoding: maps (atom or string keys), lists, binaries (UTF-8), numbers,
  booleans, nil and other atoms (as strings).
  """

  # Guards against absurdly deep nesting in untrusted input.
  @max_depth 512

  defguardp is_hex(c) when c in ?0..?9 or c in ?a..?f or c in ?A..?F

  ## Encoding

  @doc "Encodes `term` to a JSON binary. Raises `ArgumentError` on unsupported terms."
  @spec encode!(term) :: binary
  def encode!(term), do: term |> encode_value() |> IO.iodata_to_binary()

  defp encode_value(nil), do: "null"
  defp encode_value(true), do: "true"
  defp encode_value(false), do: "false"
  defp encode_value(atom) when is_atom(atom), do: encode_string(Atom.to_string(atom))
  defp encode_value(bin) when is_binary(bin), do: encode_string(bin)
  defp encode_value(int) when is_integer(int), do: Integer.to_string(int)
  # Float.to_string/1 gives the shortest round-tripping form, e.g. "1.0e20",
  # which is valid JSON.
  defp encode_value(float) when is_float(float), do: Float.to_string(float)

  defp encode_value(list) when is_list(list) do
    [?[, list |> Enum.map(&encode_value/1) |> Enum.intersperse(?,), ?]]
  end

  defp encode_value(map) when is_map(map) and not is_struct(map) do
    pairs = Enum.map(map, fn {key, value} -> [encode_key(key), ?:, encode_value(value)] end)

    [?{, Enum.intersperse(pairs, ?,), ?}]
  end

  defp encode_value(other) do
    raise ArgumentError, "cannot encode #{inspect(other)} as JSON"
  end

  defp encode_key(key) when is_binary(key), do: encode_string(key)
  defp encode_key(key) when is_atom(key), do: encode_string(Atom.to_string(key))
  defp encode_key(key) when is_integer(key), do: encode_string(Integer.to_string(key))
  defp encode_key(key), do: raise(ArgumentError, "cannot encode #{inspect(key)} as a JSON key")

  defp encode_string(string) do
    unless String.valid?(string) do
      raise ArgumentError, "cannot encode a non-UTF-8 binary as JSON"
    end

    [?", escape(string, 0, 0, string, []), ?"]
  end

  # Walks the string byte by byte, copying unescaped runs as sub-binaries of
  # `original`: `skip` is the offset where the current run starts, `len` its
  # length so far. Multi-byte UTF-8 sequences are copied through unchanged.

  defp escape(<<>>, skip, len, original, acc), do: [acc | binary_part(original, skip, len)]

  defp escape(<<byte, rest::binary>>, skip, len, original, acc)
       when byte in [?", ?\\] or byte < 0x20 do
    acc = [acc, binary_part(original, skip, len), escape_byte(byte)]
    escape(rest, skip + len + 1, 0, original, acc)
  end

  defp escape(<<_byte, rest::binary>>, skip, len, original, acc) do
    escape(rest, skip, len + 1, original, acc)
  end

  defp escape_byte(?"), do: "\\\""
  defp escape_byte(?\\), do: "\\\\"
  defp escape_byte(?\n), do: "\\n"
  defp escape_byte(?\r), do: "\\r"
  defp escape_byte(?\t), do: "\\t"
  defp escape_byte(?\b), do: "\\b"
  defp escape_byte(?\f), do: "\\f"

  defp escape_byte(byte) do
    hex = byte |> Integer.to_string(16) |> String.pad_leading(4, "0")
    ["\\u", hex]
  end

  ## Decoding

  @doc "Decodes a JSON binary. Returns `{:ok, term}` or `{:error, reason}`."
  @spec decode(binary) :: {:ok, term} | {:error, String.t()}
  def decode(json) when is_binary(json) do
    {value, rest} = value(skip_ws(json), 0)

    case skip_ws(rest) do
      "" -> {:ok, value}
      _ -> {:error, "unexpected trailing data"}
    end
  catch
    {:json_error, reason} -> {:error, reason}
  end

  defp fail(reason), do: throw({:json_error, reason})

  defp skip_ws(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip_ws(rest)
  defp skip_ws(rest), do: rest

  defp value(_, depth) when depth > @max_depth, do: fail("nesting too deep")
  defp value(<<?{, rest::binary>>, depth), do: object(skip_ws(rest), depth + 1, [])
  defp value(<<?[, rest::binary>>, depth), do: array(skip_ws(rest), depth + 1, [])
  defp value(<<?", rest::binary>>, _depth), do: string(rest, [])
  defp value(<<"true", rest::binary>>, _depth), do: {true, rest}
  defp value(<<"false", rest::binary>>, _depth), do: {false, rest}
  defp value(<<"null", rest::binary>>, _depth), do: {nil, rest}
  defp value(<<c, _::binary>> = data, _depth) when c == ?- or c in ?0..?9, do: number(data)
  defp value(<<>>, _depth), do: fail("unexpected end of input")
  defp value(_, _depth), do: fail("unexpected character")

  defp object(<<?}, rest::binary>>, _depth, []), do: {%{}, rest}

  defp object(<<?", rest::binary>>, depth, pairs) do
    {key, rest} = string(rest, [])

    case skip_ws(rest) do
      <<?:, rest::binary>> ->
        {value, rest} = value(skip_ws(rest), depth)
        pairs = [{key, value} | pairs]

        case skip_ws(rest) do
          <<?,, rest::binary>> -> object(skip_ws(rest), depth, pairs)
          # Map.new/1 keeps the last value of a duplicated key; pairs are
          # reversed so that "last" means last in the document.
          <<?}, rest::binary>> -> {pairs |> Enum.reverse() |> Map.new(), rest}
          _ -> fail("expected ',' or '}' in object")
        end

      _ ->
        fail("expected ':' after object key")
    end
  end

  defp object(_, _depth, _pairs), do: fail("expected string key in object")

  defp array(<<?], rest::binary>>, _depth, []), do: {[], rest}

  defp array(data, depth, items) do
    {value, rest} = value(data, depth)
    items = [value | items]

    case skip_ws(rest) do
      <<?,, rest::binary>> -> array(skip_ws(rest), depth, items)
      <<?], rest::binary>> -> {Enum.reverse(items), rest}
      _ -> fail("expected ',' or ']' in array")
    end
  end

  # `acc` is iodata; the `::utf8` match also rejects invalid UTF-8 input.
  defp string(<<?", rest::binary>>, acc), do: {IO.iodata_to_binary(acc), rest}
  defp string(<<?\\, rest::binary>>, acc), do: string_escape(rest, acc)
  defp string(<<c, _::binary>>, _acc) when c < 0x20, do: fail("control character in string")
  defp string(<<c, rest::binary>>, acc) when c < 0x80, do: string(rest, [acc, c])
  defp string(<<c::utf8, rest::binary>>, acc), do: string(rest, [acc, <<c::utf8>>])
  defp string(<<>>, _acc), do: fail("unterminated string")
  defp string(_, _acc), do: fail("invalid UTF-8 in string")

  defp string_escape(<<?", rest::binary>>, acc), do: string(rest, [acc, ?"])
  defp string_escape(<<?\\, rest::binary>>, acc), do: string(rest, [acc, ?\\])
  defp string_escape(<<?/, rest::binary>>, acc), do: string(rest, [acc, ?/])
  defp string_escape(<<?b, rest::binary>>, acc), do: string(rest, [acc, ?\b])
  defp string_escape(<<?f, rest::binary>>, acc), do: string(rest, [acc, ?\f])
  defp string_escape(<<?n, rest::binary>>, acc), do: string(rest, [acc, ?\n])
  defp string_escape(<<?r, rest::binary>>, acc), do: string(rest, [acc, ?\r])
  defp string_escape(<<?t, rest::binary>>, acc), do: string(rest, [acc, ?\t])

  defp string_escape(<<?u, hex::binary-size(4), rest::binary>>, acc) do
    case hex4(hex) do
      # High surrogate: must be followed by an escaped low surrogate.
      high when high in 0xD800..0xDBFF ->
        with <<"\\u", hex2::binary-size(4), rest2::binary>> <- rest,
             low when low in 0xDC00..0xDFFF <- hex4(hex2) do
          codepoint = 0x10000 + Bitwise.bsl(high - 0xD800, 10) + (low - 0xDC00)
          string(rest2, [acc, <<codepoint::utf8>>])
        else
          _ -> fail("invalid surrogate pair in string")
        end

      low when low in 0xDC00..0xDFFF ->
        fail("lone low surrogate in string")

      codepoint ->
        string(rest, [acc, <<codepoint::utf8>>])
    end
  end

  defp string_escape(_, _acc), do: fail("invalid escape in string")

  defp hex4(<<a, b, c, d>> = hex) when is_hex(a) and is_hex(b) and is_hex(c) and is_hex(d),
    do: String.to_integer(hex, 16)

  defp hex4(_), do: fail("invalid \\u escape in string")

  # JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  defp number(data) do
    {sign, rest} =
      case data do
        <<?-, rest::binary>> -> {"-", rest}
        _ -> {"", data}
      end

    {int, rest} =
      case rest do
        <<?0, rest::binary>> -> {"0", rest}
        <<c, _::binary>> when c in ?1..?9 -> digits(rest)
        _ -> fail("invalid number")
      end

    {frac, rest} =
      case rest do
        <<?., rest::binary>> -> required_digits(rest)
        _ -> {nil, rest}
      end

    {exp, rest} =
      case rest do
        <<e, ?+, rest::binary>> when e in [?e, ?E] -> required_digits(rest)
        <<e, ?-, rest::binary>> when e in [?e, ?E] -> neg(required_digits(rest))
        <<e, rest::binary>> when e in [?e, ?E] -> required_digits(rest)
        _ -> {nil, rest}
      end

    {to_number(sign <> int, frac, exp), rest}
  end

  defp neg({digits, rest}), do: {"-" <> digits, rest}

  defp required_digits(<<c, _::binary>> = data) when c in ?0..?9, do: digits(data)
  defp required_digits(_), do: fail("invalid number")

  defp digits(data), do: digits(data, 0, data)

  defp digits(<<c, rest::binary>>, n, data) when c in ?0..?9, do: digits(rest, n + 1, data)
  defp digits(rest, n, data), do: {binary_part(data, 0, n), rest}

  defp to_number(int, nil, nil), do: String.to_integer(int)

  defp to_number(int, frac, exp) do
    # :erlang.binary_to_float/1 insists on "I.F" or "I.FeE" form.
    float = "#{int}.#{frac || "0"}" <> if(exp, do: "e" <> exp, else: "")

    try do
      :erlang.binary_to_float(float)
    rescue
      ArgumentError -> fail("number out of range")
    end
  end
end
