//! Go's `text/template` syntax, the part alert templates use: text, `{{ pipeline }}` with
//! `{{-`/`-}}` trimming and comments, variables (`$x := ...`, `$x = ...`), fields (`.Labels.job`,
//! `$labels.job`), literals, parenthesised pipelines, `|`, and `if`/`else if`/`else`,
//! `range` (with `$i, $e :=`), `with`, `end`. `define`/`template`/`block` are refused.

use super::funcs::is_function;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action(Pipeline),
    If {
        branches: Vec<(Pipeline, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    Range {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    With {
        pipeline: Pipeline,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pipeline {
    /// Variables declared (`:=`) or assigned (`=`) from the pipeline's value.
    pub variables: Vec<String>,
    pub declares: bool,
    pub commands: Vec<Vec<Operand>>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Operand {
    /// `.a.b` (empty: `.`).
    Field(Vec<String>),
    /// `$x.a.b` (`$` alone is the root).
    Variable(String, Vec<String>),
    Function(String),
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    /// `(pipeline).a.b`
    Group(Box<Pipeline>, Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Field(Vec<String>),
    Variable(String, Vec<String>),
    Identifier(String),
    String(String),
    Number(String),
    LeftParen,
    RightParen,
    /// `).a.b` fields after a group
    GroupFields(Vec<String>),
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// Parses a template.
pub(crate) fn parse(text: &str) -> Result<Vec<Node>, String> {
    let actions = split_actions(text)?;
    let mut position = 0;
    let (nodes, terminator) = parse_list(&actions, &mut position)?;
    match terminator {
        None => Ok(nodes),
        Some(t) => Err(format!("unexpected {{{{{t}}}}}")),
    }
}

/// Text and action pieces, trimming applied.
enum Piece {
    Text(String),
    Action(String),
}

fn split_actions(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut trim_next_text = false;
    while let Some(start) = rest.find("{{") {
        let mut before = &rest[..start];
        if trim_next_text {
            before = before.trim_start();
        }
        let after_open = &rest[start + 2..];
        let trim_left = after_open.starts_with("- ")
            || after_open.starts_with("-\t")
            || after_open.starts_with("-\n");
        if trim_left {
            before = before.trim_end();
        }
        if !before.is_empty() {
            pieces.push(Piece::Text(before.to_string()));
        }
        let body_start = if trim_left { 2 } else { 0 };
        let body_text = &after_open[body_start..];
        let end = find_action_end(body_text).ok_or("unclosed action")?;
        let mut body = &body_text[..end];
        trim_next_text = false;
        if body.ends_with(" -") || body.ends_with("\t-") || body.ends_with("\n-") {
            body = &body[..body.len() - 1];
            trim_next_text = true;
        }
        let trimmed = body.trim();
        if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
            pieces.push(Piece::Action(trimmed.to_string()));
        }
        rest = &body_text[end + 2..];
    }
    let mut tail = rest;
    if trim_next_text {
        tail = tail.trim_start();
    }
    if !tail.is_empty() {
        pieces.push(Piece::Text(tail.to_string()));
    }
    Ok(pieces)
}

/// The position of the `}}` closing an action, skipping quoted strings.
fn find_action_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses nodes until `end`/`else` (returned as the terminator) or the end of input.
fn parse_list(
    pieces: &[Piece],
    position: &mut usize,
) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while *position < pieces.len() {
        let piece = &pieces[*position];
        *position += 1;
        let action = match piece {
            Piece::Text(text) => {
                nodes.push(Node::Text(text.clone()));
                continue;
            }
            Piece::Action(action) => action.as_str(),
        };
        let (keyword, rest) = split_keyword(action);
        match keyword {
            "end" => return Ok((nodes, Some("end".into()))),
            "else" => return Ok((nodes, Some(action.to_string()))),
            "if" => nodes.push(parse_if(rest, pieces, position)?),
            "range" | "with" => {
                let pipeline = parse_pipeline(rest)?;
                let (body, terminator) = parse_list(pieces, position)?;
                let otherwise = match terminator.as_deref() {
                    Some("end") => Vec::new(),
                    Some("else") => {
                        let (otherwise, terminator) = parse_list(pieces, position)?;
                        if terminator.as_deref() != Some("end") {
                            return Err(format!("missing {{{{end}}}} for {keyword}"));
                        }
                        otherwise
                    }
                    _ => return Err(format!("missing {{{{end}}}} for {keyword}")),
                };
                nodes.push(if keyword == "range" {
                    Node::Range {
                        pipeline,
                        body,
                        otherwise,
                    }
                } else {
                    Node::With {
                        pipeline,
                        body,
                        otherwise,
                    }
                });
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(format!(
                    "{{{{{keyword}}}}} is not supported in alert templates"
                ))
            }
            _ => nodes.push(Node::Action(parse_pipeline(action)?)),
        }
    }
    Ok((nodes, None))
}

fn parse_if(condition: &str, pieces: &[Piece], position: &mut usize) -> Result<Node, String> {
    let mut branches = vec![(parse_pipeline(condition)?, Vec::new())];
    loop {
        let (body, terminator) = parse_list(pieces, position)?;
        if let Some(last) = branches.last_mut() {
            last.1 = body;
        }
        match terminator.as_deref() {
            Some("end") => {
                return Ok(Node::If {
                    branches,
                    otherwise: Vec::new(),
                })
            }
            Some(other) if other.starts_with("else") => {
                let rest = other["else".len()..].trim();
                if let Some(condition) = rest.strip_prefix("if") {
                    branches.push((parse_pipeline(condition.trim())?, Vec::new()));
                    continue;
                }
                if !rest.is_empty() {
                    return Err(format!("unexpected {rest:?} after else"));
                }
                let (otherwise, terminator) = parse_list(pieces, position)?;
                if terminator.as_deref() != Some("end") {
                    return Err("missing {{end}} for if".into());
                }
                return Ok(Node::If {
                    branches,
                    otherwise,
                });
            }
            _ => return Err("missing {{end}} for if".into()),
        }
    }
}

fn split_keyword(action: &str) -> (&str, &str) {
    let end = action
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(action.len());
    let keyword = &action[..end];
    match keyword {
        "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block" | "break"
        | "continue" => (keyword, action[end..].trim()),
        _ => ("", action),
    }
}

fn parse_pipeline(text: &str) -> Result<Pipeline, String> {
    let tokens = lex(text)?;
    let mut position = 0;
    let pipeline = parse_pipeline_tokens(&tokens, &mut position)?;
    if position != tokens.len() {
        return Err(format!("unexpected {:?} in {text:?}", tokens[position]));
    }
    Ok(pipeline)
}

fn parse_pipeline_tokens(tokens: &[Token], position: &mut usize) -> Result<Pipeline, String> {
    let mut pipeline = Pipeline {
        variables: Vec::new(),
        declares: false,
        commands: Vec::new(),
    };
    // `$a, $b :=` or `$a =`
    let mut lookahead = *position;
    let mut names = Vec::new();
    while let Some(Token::Variable(name, fields)) = tokens.get(lookahead) {
        if !fields.is_empty() {
            break;
        }
        names.push(name.clone());
        lookahead += 1;
        match tokens.get(lookahead) {
            Some(Token::Comma) => lookahead += 1,
            Some(Token::Declare) | Some(Token::Assign) => {
                pipeline.declares = tokens[lookahead] == Token::Declare;
                pipeline.variables = std::mem::take(&mut names);
                *position = lookahead + 1;
                break;
            }
            _ => break,
        }
    }
    let mut command = Vec::new();
    while let Some(token) = tokens.get(*position) {
        match token {
            Token::RightParen => break,
            Token::Pipe => {
                if command.is_empty() {
                    return Err("missing command before '|'".into());
                }
                pipeline.commands.push(std::mem::take(&mut command));
                *position += 1;
                continue;
            }
            _ => {}
        }
        command.push(parse_operand(tokens, position)?);
    }
    if command.is_empty() {
        return Err("missing value for command".into());
    }
    pipeline.commands.push(command);
    Ok(pipeline)
}

fn parse_operand(tokens: &[Token], position: &mut usize) -> Result<Operand, String> {
    let token = tokens
        .get(*position)
        .ok_or("unexpected end of action")?
        .clone();
    *position += 1;
    Ok(match token {
        Token::Field(fields) => Operand::Field(fields),
        Token::Variable(name, fields) => Operand::Variable(name, fields),
        Token::Identifier(name) => match name.as_str() {
            "true" => Operand::Bool(true),
            "false" => Operand::Bool(false),
            "nil" => Operand::Nil,
            _ if is_function(&name) => Operand::Function(name),
            _ => return Err(format!("function {name:?} not defined")),
        },
        Token::String(s) => Operand::String(s),
        Token::Number(text) => parse_number(&text)?,
        Token::LeftParen => {
            let inner = parse_pipeline_tokens(tokens, position)?;
            if tokens.get(*position) != Some(&Token::RightParen) {
                return Err("unclosed left paren".into());
            }
            *position += 1;
            let fields = match tokens.get(*position) {
                Some(Token::GroupFields(fields)) => {
                    *position += 1;
                    fields.clone()
                }
                _ => Vec::new(),
            };
            Operand::Group(Box::new(inner), fields)
        }
        other => return Err(format!("unexpected {other:?}")),
    })
}

fn parse_number(text: &str) -> Result<Operand, String> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16)
            .map(Operand::Int)
            .map_err(|_| format!("bad number syntax: {text:?}"));
    }
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Operand::Int(i));
    }
    text.parse::<f64>()
        .map(Operand::Float)
        .map_err(|_| format!("bad number syntax: {text:?}"))
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let identifier_char = |c: char| c.is_alphanumeric() || c == '_';
    let read_fields = |i: &mut usize| -> Vec<String> {
        let mut fields = Vec::new();
        while *i < chars.len()
            && chars[*i] == '.'
            && chars.get(*i + 1).is_some_and(|&c| identifier_char(c))
        {
            *i += 1;
            let start = *i;
            while *i < chars.len() && identifier_char(chars[*i]) {
                *i += 1;
            }
            fields.push(chars[start..*i].iter().collect());
        }
        fields
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '|' => {
                tokens.push(Token::Pipe);
                i += 1;
            }
            '(' => {
                tokens.push(Token::LeftParen);
                i += 1;
            }
            ')' => {
                tokens.push(Token::RightParen);
                i += 1;
                let fields = read_fields(&mut i);
                if !fields.is_empty() {
                    tokens.push(Token::GroupFields(fields));
                }
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::Declare);
                i += 2;
            }
            '=' => {
                tokens.push(Token::Assign);
                i += 1;
            }
            '.' => {
                let fields = read_fields(&mut i);
                if fields.is_empty() {
                    i += 1; // `.` alone
                }
                tokens.push(Token::Field(fields));
            }
            '$' => {
                let start = i;
                i += 1;
                while i < chars.len() && identifier_char(chars[i]) {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let fields = read_fields(&mut i);
                tokens.push(Token::Variable(name, fields));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err("unterminated quoted string".into());
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let escaped =
                                chars.get(i).copied().ok_or("unterminated quoted string")?;
                            i += 1;
                            s.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                        }
                        c => s.push(c),
                    }
                }
                tokens.push(Token::String(s));
            }
            '`' => {
                let start = i + 1;
                let end = chars[start..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or("unterminated raw quoted string")?;
                tokens.push(Token::String(chars[start..start + end].iter().collect()));
                i = start + end + 1;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric()
                        || chars[i] == '.'
                        || ((chars[i] == '-' || chars[i] == '+')
                            && matches!(chars[i - 1], 'e' | 'E')))
                {
                    i += 1;
                }
                tokens.push(Token::Number(chars[start..i].iter().collect()));
            }
            c if identifier_char(c) => {
                let start = i;
                while i < chars.len() && identifier_char(chars[i]) {
                    i += 1;
                }
                tokens.push(Token::Identifier(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(tokens)
}
