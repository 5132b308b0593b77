defmodule Web.JSONTest do
  use ExUnit.Case, async: true

  alias Web.JSON

  defp round_trip(term), do: JSON.decode(JSON.encode!(term))

  test "round-trips nested structures" do
    term = %{
      "a" => [1, 2.5, -3, true, false, nil, "x"],
      "b" => %{"c" => %{"d" => []}, "e" => %{}},
      "f" => [[[]], [%{"g" => "h"}]]
    }

    assert round_trip(term) == {:ok, term}
  end

  test "round-trips unicode and escapes" do
    for s <- [
          "",
          "héllo wörld",
          "日本語",
          "emoji 😀 and 𝄞",
          "quote \" backslash \\ slash /",
          "newline \n tab \t cr \r bs \b ff \f",
          <<0, 1, 31, 127>>,
          "\u2028\u2029"
        ] do
      assert round_trip(s) == {:ok, s}
    end
  end

  test "round-trips numbers" do
    for n <- [
          0,
          -1,
          42,
          123_456_789_012_345_678_901_234_567_890,
          0.0,
          -0.5,
          1.0e20,
          1.5e-10,
          3.14159
        ] do
      assert round_trip(n) == {:ok, n}
    end
  end

  test "encodes atoms, atom keys and control characters" do
    assert JSON.encode!(%{ok: :yes}) == ~s({"ok":"yes"})
    assert JSON.encode!(<<1>>) == ~s("\\u0001")
    assert JSON.encode!("a\"b") == ~s("a\\"b")
    assert JSON.encode!([1, [2, 3]]) == "[1,[2,3]]"
  end

  test "refuses to encode unsupported terms" do
    assert_raise ArgumentError, fn -> JSON.encode!({:tuple}) end
    assert_raise ArgumentError, fn -> JSON.encode!(<<255>>) end
    assert_raise ArgumentError, fn -> JSON.encode!(self()) end
  end

  test "decodes whitespace, escapes and surrogate pairs" do
    assert JSON.decode(~s( { "a" : [ 1 , 2 ] , "b":"\\u00e9\\ud83d\\ude00\\/\\n" } \n)) ==
             {:ok, %{"a" => [1, 2], "b" => "é😀/\n"}}
  end

  test "decodes numbers per the JSON grammar" do
    assert JSON.decode("0") == {:ok, 0}
    assert JSON.decode("-12") == {:ok, -12}
    assert JSON.decode("1.5") == {:ok, 1.5}
    assert JSON.decode("1e3") == {:ok, 1000.0}
    assert JSON.decode("-2.5E-2") == {:ok, -0.025}
    assert JSON.decode("1E+2") == {:ok, 100.0}

    for bad <- ["01", "1.", ".5", "-", "+1", "1e", "1e+", "0x10", "1e400"] do
      assert {:error, _} = JSON.decode(bad), "expected #{inspect(bad)} to be rejected"
    end
  end

  test "last duplicate key wins" do
    assert JSON.decode(~s({"a":1,"a":2})) == {:ok, %{"a" => 2}}
  end

  test "rejects malformed documents" do
    for bad <- [
          "",
          " ",
          "{",
          "}",
          "[1,]",
          "[1 2]",
          ~s({"a":1,}),
          ~s({"a" 1}),
          ~s({a:1}),
          "{'a':1}",
          ~s("unterminated),
          ~s("tab\there"),
          ~s("bad \\x escape"),
          ~s("\\u12"),
          ~s("\\u+123"),
          ~s("\\ud83d alone"),
          ~s("\\ude00"),
          <<?", 255, ?">>,
          "nul",
          "true false",
          "NaN",
          String.duplicate("[", 10_000) <> String.duplicate("]", 10_000)
        ] do
      assert {:error, reason} = JSON.decode(bad), "expected #{inspect(bad)} to be rejected"
      assert is_binary(reason)
    end
  end
end
