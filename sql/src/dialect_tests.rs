use super::*;
use sqlparser::ast::{SetExpr, TableFactor};

const READINGS: &str = "CREATE TABLE readings (
  sensor_id STRING,
  ts_ms BIGINT,
  temp_f DOUBLE,
  ts AS TO_TIMESTAMP_LTZ(ts_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'in.csv', 'format' = 'csv')";

fn create(s: &JobStatement) -> &sqlparser::ast::CreateTable {
    let Statement::CreateTable(t) = &s.statement else { panic!("not a CREATE TABLE: {}", s.statement) };
    t
}

#[test]
fn flink_create_table_with_computed_column_and_watermark() {
    let stmts = parse(READINGS).unwrap();
    assert_eq!(stmts.len(), 1);
    let t = create(&stmts[0]);
    assert_eq!(t.name.to_string(), "readings");
    let names: Vec<_> = t.columns.iter().map(|c| c.name.value.as_str()).collect();
    assert_eq!(names, ["sensor_id", "ts_ms", "temp_f", "ts"]);
    assert_eq!(t.columns[1].data_type, DataType::BigInt(None));
    let ColumnOption::Generated { generation_expr: Some(e), .. } = &t.columns[3].options[0].option else {
        panic!("ts is not a computed column: {:?}", t.columns[3]);
    };
    assert_eq!(e.to_string(), "TO_TIMESTAMP_LTZ(ts_ms, 3)");
    let wm = stmts[0].watermark.as_ref().unwrap();
    assert_eq!(wm.column.value, "ts");
    assert_eq!(wm.expr.to_string(), "ts - INTERVAL '2' SECOND");
    let CreateTableOptions::With(opts) = &t.table_options else { panic!("no WITH options") };
    let opts: Vec<String> = opts.iter().map(ToString::to_string).collect();
    assert_eq!(opts, ["'connector' = 'filesystem'", "'path' = 'in.csv'", "'format' = 'csv'"]);
}

#[test]
fn the_generic_dialect_rejects_what_the_flink_one_accepts() {
    // Why the dialect exists (issue 15): sqlparser's generic dialect
    // stops at the watermark clause and at `TABLE t` in a call.
    let generic = sqlparser::dialect::GenericDialect {};
    assert!(sqlparser::parser::Parser::parse_sql(&generic, READINGS).is_err());
    let q = "SELECT * FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND))";
    assert!(sqlparser::parser::Parser::parse_sql(&generic, q).is_err());
    assert!(parse(q).is_ok());
}

fn window_call(sql: &str) -> (String, Vec<String>) {
    let stmts = parse(sql).unwrap();
    let Statement::Query(q) = &stmts[0].statement else { panic!("not a query") };
    let SetExpr::Select(s) = q.body.as_ref() else { panic!("not a select") };
    let TableFactor::TableFunction { expr: Expr::Function(f), .. } = &s.from[0].relation else {
        panic!("not TABLE(...): {:?}", s.from[0].relation)
    };
    let FunctionArguments::List(args) = &f.args else { panic!("no args") };
    (f.name.to_string(), args.args.iter().map(ToString::to_string).collect())
}

#[test]
fn window_table_function_arguments() {
    let (name, args) = window_call(
        "SELECT window_start, window_end, COUNT(*) FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND)) GROUP BY window_start, window_end",
    );
    assert_eq!(name, "TUMBLE");
    assert_eq!(args, ["TABLE(readings)", "DESCRIPTOR(ts)", "INTERVAL '5' SECOND"]);
    let (name, args) = window_call(
        "SELECT * FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))",
    );
    assert_eq!((name.as_str(), args.len()), ("HOP", 4));
    let (name, args) = window_call(
        "SELECT * FROM TABLE(CUMULATE(TABLE `my table`, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '1' HOUR))",
    );
    assert_eq!(name, "CUMULATE");
    assert_eq!(args[0], "TABLE(`my table`)");
    let (name, args) = window_call(
        "SELECT * FROM TABLE(SESSION(TABLE readings PARTITION BY sensor_id, DESCRIPTOR(ts), INTERVAL '1' SECOND))",
    );
    assert_eq!(name, "SESSION");
    assert_eq!(args, ["TABLE(readings, PARTITION_BY(sensor_id))", "DESCRIPTOR(ts)", "INTERVAL '1' SECOND"]);
    let (_, args) = window_call(
        "SELECT * FROM TABLE(SESSION(TABLE readings PARTITION BY (room, sensor_id), DESCRIPTOR(ts), INTERVAL '1' SECOND))",
    );
    assert_eq!(args[0], "TABLE(readings, PARTITION_BY(room, sensor_id))");
}

#[test]
fn watermarks_stay_with_their_tables() {
    let sql = format!(
        "CREATE TABLE out1 (a INT) WITH ('connector' = 'print');\n{READINGS};\nCREATE TEMPORARY TABLE IF NOT EXISTS out2 (b STRING NOT NULL COMMENT 'x') WITH ('connector' = 'print');\nINSERT INTO out1 SELECT 1"
    );
    let stmts = parse(&sql).unwrap();
    assert_eq!(stmts.len(), 4);
    assert!(stmts[0].watermark.is_none());
    assert_eq!(stmts[1].watermark.as_ref().unwrap().column.value, "ts");
    assert!(stmts[2].watermark.is_none());
    assert!(create(&stmts[2]).temporary && create(&stmts[2]).if_not_exists);
    assert!(matches!(stmts[3].statement, Statement::Insert(_)));
}

#[test]
fn errors_name_line_column_and_what_is_wrong() {
    let e = parse("CREATE TABLE t (\n  a INT,\n  b\n) WITH ('connector' = 'print')").unwrap_err();
    assert_eq!(e.to_string(), "line 4, column 1: syntax error: Expected: a data type name, found: )");
    let e = parse("CREATE TABLE t (a INT, PRIMARY KEY (a) NOT ENFORCED) WITH ('connector' = 'print')").unwrap_err();
    assert_eq!(e.to_string(), "line 1, column 24: syntax error: PRIMARY KEY constraints are not supported");
    let e = parse("CREATE TABLE t (a INT METADATA) WITH ('connector' = 'print')").unwrap_err();
    assert_eq!(e.to_string(), "line 1, column 23: syntax error: METADATA columns are not supported");
    let e = parse(
        "CREATE TABLE t (ts TIMESTAMP(3), WATERMARK FOR ts AS ts, WATERMARK FOR ts AS ts) WITH ('connector' = 'print')",
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "line 1, column 58: syntax error: a table has at most one WATERMARK FOR clause");
    let e = parse("CREATE TABLE t (a INT)").unwrap_err();
    assert_eq!(e.to_string(), "line 1, column 23: syntax error: Expected: WITH, found: EOF");
    let e = parse("SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(1), INTERVAL '5' SECOND))").unwrap_err();
    assert_eq!(e.to_string(), "line 1, column 48: syntax error: Expected: identifier, found: 1");
}
