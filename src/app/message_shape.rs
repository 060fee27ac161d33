//! Telling a serialised Menu from a serialised Configuration by the shape of their protobuf
//! wire bytes (prost ignores unknown fields, so decoding alone accepts either as the other):
//! a Menu has fields 1-3, field 3 its graphs (each a name and nodes of three string fields); a
//! Configuration has fields 1-7, fields 3 and 4 its modules (three strings and properties).

/// What the bytes can only be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A Menu with graphs.
    Menu,
    /// A Configuration with tools, algos, a malloc limit, a sampler or an input.
    Config,
}

/// One top-level field of a message: number, wire type, and the bytes of a length-delimited
/// one.
type Field<'a> = (u64, u8, &'a [u8]);

/// Returns the fields of `bytes` at one level, or `None` when they are not well-formed.
fn fields(mut bytes: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (key, rest) = varint(bytes)?;
        let (number, wire) = (key >> 3, (key & 7) as u8);
        bytes = match wire {
            0 => varint(rest)?.1,
            1 => rest.get(8..)?,
            5 => rest.get(4..)?,
            2 => {
                let (len, rest) = varint(rest)?;
                let len = usize::try_from(len).ok()?;
                out.push((number, wire, rest.get(..len)?));
                rest.get(len..)?
            }
            _ => return None,
        };
        if wire != 2 {
            out.push((number, wire, &[]));
        }
    }
    Some(out)
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// Whether `bytes` is a message whose fields are all length-delimited and numbered in
/// `allowed`, each nested one (`nested` of its number) itself of the expected shape.
fn shaped(bytes: &[u8], allowed: &[u64], nested: &dyn Fn(u64, &[u8]) -> bool) -> bool {
    fields(bytes).is_some_and(|fs| {
        fs.iter()
            .all(|(n, w, b)| *w == 2 && allowed.contains(n) && nested(*n, b))
    })
}

/// Whether `b` reads as a name or a module path: UTF-8 without control characters (the bytes
/// of a nested message are rarely that: their tags and short lengths are below 0x20).
fn text(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|t| {
        !t.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    })
}

fn strings_only(max: u64) -> impl Fn(&[u8]) -> bool {
    move |b| shaped(b, &(1..=max).collect::<Vec<_>>(), &|_, s| text(s))
}

fn is_menu(bytes: &[u8]) -> bool {
    let node = strings_only(3);
    let graph = |b: &[u8]| {
        shaped(b, &[1, 2], &|n, inner| match n {
            2 => node(inner),
            _ => text(inner),
        })
    };
    shaped(bytes, &[1, 2, 3], &|n, b| match n {
        3 => graph(b),
        _ => text(b),
    })
}

fn is_config(bytes: &[u8]) -> bool {
    let Some(fs) = fields(bytes) else {
        return false;
    };
    let module = |b: &[u8]| {
        shaped(b, &[1, 2, 3, 4], &|n, inner| match n {
            4 => fields(inner).is_some(),
            _ => text(inner),
        })
    };
    fs.iter().all(|(n, w, b)| match (n, w) {
        (1 | 2, 2) => text(b),
        (3 | 4, 2) => module(b),
        (5, 0) => true,
        (6 | 7, 2) => fields(b).is_some(),
        _ => false,
    })
}

/// Returns what `bytes` can only be, or `None` when they read as both (only a name and a
/// uuid) or as neither (the registration's own decoding says what is wrong then).
pub fn of(bytes: &[u8]) -> Option<Shape> {
    match (is_menu(bytes), is_config(bytes)) {
        (true, false) => Some(Shape::Menu),
        (false, true) => Some(Shape::Config),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cronusfs::pb::cronus::{Configuration, Graph, Menu, Module, Node, Sampler};
    use prost::Message;

    #[test]
    fn menus_and_configurations_are_told_apart_when_they_can_be() {
        let menu = Menu {
            name: "m".into(),
            uuid: "u".into(),
            graphs: vec![Graph {
                name: "g".into(),
                nodes: vec![Node {
                    name: "n".into(),
                    parents: vec!["p".into()],
                    algos: vec!["a".into()],
                }],
            }],
        };
        let config = Configuration {
            name: "c".into(),
            uuid: "u".into(),
            tools: vec![Module {
                name: "t".into(),
                module: "artemis.tools".into(),
                klass: "Tool".into(),
                properties: None,
            }],
            sampler: Some(Sampler {
                ndatums: 10,
                nchunks: 2,
            }),
            ..Default::default()
        };
        assert_eq!(of(&menu.encode_to_vec()), Some(Shape::Menu));
        assert_eq!(of(&config.encode_to_vec()), Some(Shape::Config));
        let bare = Menu {
            name: "m".into(),
            uuid: "u".into(),
            graphs: vec![],
        };
        assert_eq!(of(&bare.encode_to_vec()), None, "reads as either");
        assert_eq!(of(b"\xff\xff"), None, "reads as neither");
    }
}
