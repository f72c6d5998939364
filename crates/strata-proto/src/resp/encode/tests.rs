use super::*;

fn both(write: impl Fn(&mut Encoder<'_>)) -> (String, String) {
    let mut two = Vec::new();
    write(&mut Encoder::new(&mut two, Protocol::Resp2));
    let mut three = Vec::new();
    write(&mut Encoder::new(&mut three, Protocol::Resp3));
    (
        String::from_utf8_lossy(&two).into_owned(),
        String::from_utf8_lossy(&three).into_owned(),
    )
}

fn same(write: impl Fn(&mut Encoder<'_>), expected: &str) {
    assert_eq!(both(write), (expected.to_owned(), expected.to_owned()));
}

fn differ(write: impl Fn(&mut Encoder<'_>), resp2: &str, resp3: &str) {
    assert_eq!(both(write), (resp2.to_owned(), resp3.to_owned()));
}

#[test]
fn version_independent_types() {
    same(
        |e| {
            e.simple(b"OK");
        },
        "+OK\r\n",
    );
    same(
        |e| {
            e.ok();
        },
        "+OK\r\n",
    );
    same(
        |e| {
            e.simple(b"a\r\nb");
        },
        "+a  b\r\n",
    );
    same(
        |e| {
            e.error(b"ERR unknown command");
        },
        "-ERR unknown command\r\n",
    );
    same(
        |e| {
            e.error(b"-WRONGTYPE Operation\n");
        },
        "-WRONGTYPE Operation \r\n",
    );
    same(
        |e| {
            e.integer(0);
        },
        ":0\r\n",
    );
    same(
        |e| {
            e.integer(-42);
        },
        ":-42\r\n",
    );
    same(
        |e| {
            e.integer(i64::MIN);
        },
        ":-9223372036854775808\r\n",
    );
    same(
        |e| {
            e.integer(1234567);
        },
        ":1234567\r\n",
    );
    same(
        |e| {
            e.bulk(b"");
        },
        "$0\r\n\r\n",
    );
    same(
        |e| {
            e.bulk(b"hello world");
        },
        "$11\r\nhello world\r\n",
    );
    same(
        |e| {
            e.array(3);
        },
        "*3\r\n",
    );
}

#[test]
fn version_dependent_types() {
    differ(
        |e| {
            e.null();
        },
        "$-1\r\n",
        "_\r\n",
    );
    differ(
        |e| {
            e.null_array();
        },
        "*-1\r\n",
        "_\r\n",
    );
    differ(
        |e| {
            e.map(2);
        },
        "*4\r\n",
        "%2\r\n",
    );
    differ(
        |e| {
            e.set(5);
        },
        "*5\r\n",
        "~5\r\n",
    );
    differ(
        |e| {
            e.push(3);
        },
        "*3\r\n",
        ">3\r\n",
    );
    differ(
        |e| {
            e.boolean(true);
        },
        ":1\r\n",
        "#t\r\n",
    );
    differ(
        |e| {
            e.boolean(false);
        },
        ":0\r\n",
        "#f\r\n",
    );
    differ(
        |e| {
            e.double(1.5);
        },
        "$3\r\n1.5\r\n",
        ",1.5\r\n",
    );
    differ(
        |e| {
            e.double(f64::INFINITY);
        },
        "$3\r\ninf\r\n",
        ",inf\r\n",
    );
    differ(
        |e| {
            e.double(f64::NEG_INFINITY);
        },
        "$4\r\n-inf\r\n",
        ",-inf\r\n",
    );
    differ(
        |e| {
            e.double(f64::NAN);
        },
        "$3\r\nnan\r\n",
        ",nan\r\n",
    );
    differ(
        |e| {
            e.double(10.0);
        },
        "$2\r\n10\r\n",
        ",10\r\n",
    );
    differ(
        |e| {
            e.verbatim(b"txt", b"Some string");
        },
        "$11\r\nSome string\r\n",
        "=15\r\ntxt:Some string\r\n",
    );
    differ(
        |e| {
            e.big_number(b"3492890328409238509324850943850943825024385");
        },
        "$43\r\n3492890328409238509324850943850943825024385\r\n",
        "(3492890328409238509324850943850943825024385\r\n",
    );
    differ(
        |e| {
            let written = e.attribute(1);
            if written {
                e.simple(b"key").integer(1);
            }
            e.ok();
        },
        "+OK\r\n",
        "|1\r\n+key\r\n:1\r\n+OK\r\n",
    );
}

#[test]
fn reply_trees() {
    let tree = Reply::Attribute {
        attributes: vec![(Reply::Simple(b"ttl".to_vec()), Reply::Integer(3))],
        reply: Box::new(Reply::Map(vec![(
            Reply::Bulk(b"k".to_vec()),
            Reply::Set(vec![Reply::Boolean(true), Reply::Null]),
        )])),
    };
    differ(
        |e| {
            e.reply(&tree);
        },
        "*2\r\n$1\r\nk\r\n*2\r\n:1\r\n$-1\r\n",
        "|1\r\n+ttl\r\n:3\r\n%1\r\n$1\r\nk\r\n~2\r\n#t\r\n_\r\n",
    );
    same(
        |e| {
            e.reply(&Reply::Error(b"-x".to_vec()));
        },
        "--x\r\n",
    );
}

#[test]
fn commands() {
    let mut out = Vec::new();
    encode_command(&mut out, &[b"SET".to_vec(), b"k".to_vec(), Vec::new()]);
    encode_command::<&[u8]>(&mut out, &[]);
    assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*0\r\n");
}
