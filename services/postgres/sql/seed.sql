-- Deterministic sample data for schema.sql: 11 departments and 3,000
-- employees (a CEO, one head per department, managers and their reports).
--
-- Every value is computed from generate_series with modular arithmetic over
-- fixed name and title lists: no random(), no now(), no dependence on the
-- session's time zone, so every load produces the same rows and the same
-- checksums (the tests rely on it).

BEGIN;

TRUNCATE employees, departments RESTART IDENTITY;

INSERT INTO departments (code, name, location, cost_center, budget, created_at)
SELECT code, name, location, cost_center, budget, timestamptz '2012-01-02 09:00:00+00'
FROM (VALUES
    (1,  'EXEC',  'Executive',        'New York',      'CC-1000',   4500000.00),
    (2,  'ENG',   'Engineering',      'San Francisco', 'CC-2000',  68000000.00),
    (3,  'SALES', 'Sales',            'New York',      'CC-3000',  31000000.00),
    (4,  'MKT',   'Marketing',        'Chicago',       'CC-3100',  12500000.00),
    (5,  'FIN',   'Finance',          'New York',      'CC-4000',   7800000.00),
    (6,  'HR',    'Human Resources',  'Chicago',       'CC-4100',   5200000.00),
    (7,  'SUP',   'Customer Support', 'Austin',        'CC-5000',  17500000.00),
    (8,  'OPS',   'Operations',       'Austin',        'CC-5100',  11000000.00),
    (9,  'LEGAL', 'Legal',            'Washington',    'CC-4200',   4300000.00),
    (10, 'PROD',  'Product',          'San Francisco', 'CC-2100',  11800000.00),
    (11, 'DATA',  'Data Science',     'Seattle',       'CC-2200',  10900000.00)
) AS d (ord, code, name, location, cost_center, budget)
ORDER BY ord;

-- Titles and yearly base salaries (USD) per department and level:
-- 0 junior, 1 mid, 2 senior, 3 lead/staff, 4 manager.
CREATE TEMP TABLE seed_titles (code text, level int, title text, base numeric) ON COMMIT DROP;
INSERT INTO seed_titles VALUES
    ('ENG', 0, 'Software Engineer I', 105000), ('ENG', 1, 'Software Engineer II', 128000),
    ('ENG', 2, 'Senior Software Engineer', 158000), ('ENG', 3, 'Staff Software Engineer', 192000),
    ('ENG', 4, 'Engineering Manager', 185000),
    ('SALES', 0, 'Sales Development Representative', 58000), ('SALES', 1, 'Account Executive', 82000),
    ('SALES', 2, 'Senior Account Executive', 104000), ('SALES', 3, 'Principal Account Executive', 126000),
    ('SALES', 4, 'Sales Manager', 138000),
    ('MKT', 0, 'Marketing Coordinator', 56000), ('MKT', 1, 'Marketing Specialist', 72000),
    ('MKT', 2, 'Senior Marketing Specialist', 94000), ('MKT', 3, 'Marketing Lead', 116000),
    ('MKT', 4, 'Marketing Manager', 128000),
    ('FIN', 0, 'Accountant', 64000), ('FIN', 1, 'Financial Analyst', 82000),
    ('FIN', 2, 'Senior Financial Analyst', 104000), ('FIN', 3, 'Finance Lead', 124000),
    ('FIN', 4, 'Finance Manager', 136000),
    ('HR', 0, 'HR Coordinator', 54000), ('HR', 1, 'HR Generalist', 68000),
    ('HR', 2, 'Senior HR Business Partner', 92000), ('HR', 3, 'HR Lead', 108000),
    ('HR', 4, 'HR Manager', 118000),
    ('SUP', 0, 'Support Specialist I', 46000), ('SUP', 1, 'Support Specialist II', 55000),
    ('SUP', 2, 'Senior Support Specialist', 66000), ('SUP', 3, 'Support Team Lead', 78000),
    ('SUP', 4, 'Support Manager', 92000),
    ('OPS', 0, 'Operations Associate', 52000), ('OPS', 1, 'Operations Analyst', 70000),
    ('OPS', 2, 'Senior Operations Analyst', 90000), ('OPS', 3, 'Operations Lead', 106000),
    ('OPS', 4, 'Operations Manager', 118000),
    ('LEGAL', 0, 'Paralegal', 62000), ('LEGAL', 1, 'Legal Counsel', 135000),
    ('LEGAL', 2, 'Senior Legal Counsel', 168000), ('LEGAL', 3, 'Principal Counsel', 196000),
    ('LEGAL', 4, 'Legal Manager', 188000),
    ('PROD', 0, 'Associate Product Manager', 98000), ('PROD', 1, 'Product Manager', 132000),
    ('PROD', 2, 'Senior Product Manager', 160000), ('PROD', 3, 'Principal Product Manager', 188000),
    ('PROD', 4, 'Group Product Manager', 198000),
    ('DATA', 0, 'Data Analyst', 86000), ('DATA', 1, 'Data Scientist', 124000),
    ('DATA', 2, 'Senior Data Scientist', 152000), ('DATA', 3, 'Staff Data Scientist', 182000),
    ('DATA', 4, 'Data Science Manager', 178000);

-- Department shares of the general staff, as ranges of a 0..99 bucket.
CREATE TEMP TABLE seed_shares (code text, lo int, hi int) ON COMMIT DROP;
INSERT INTO seed_shares VALUES
    ('ENG', 0, 29), ('SALES', 29, 44), ('SUP', 44, 57), ('MKT', 57, 65), ('OPS', 65, 73),
    ('PROD', 73, 79), ('DATA', 79, 86), ('FIN', 86, 92), ('HR', 92, 96), ('LEGAL', 96, 100);

CREATE TEMP TABLE seed_people ON COMMIT DROP AS
WITH names AS (
    SELECT
        ARRAY['James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda',
              'David', 'Elizabeth', 'William', 'Barbara', 'Richard', 'Susan', 'Joseph', 'Jessica',
              'Thomas', 'Sarah', 'Charles', 'Karen', 'Christopher', 'Lisa', 'Daniel', 'Nancy',
              'Matthew', 'Betty', 'Anthony', 'Sandra', 'Mark', 'Margaret', 'Steven', 'Ashley',
              'Andrew', 'Kimberly', 'Joshua', 'Emily', 'Kenneth', 'Donna', 'Kevin', 'Michelle',
              'Wei', 'Mei', 'Hiroshi', 'Yuki', 'Arjun', 'Priya', 'Mohammed', 'Fatima',
              'Carlos', 'Lucía', 'José', 'Sofía', 'Olga', 'Dmitri', 'Ngozi', 'Chinedu',
              'Aisha', 'Omar', 'Zoë', 'Liam', 'Noah', 'Emma', 'Olivia', 'Ava'] AS first_names,
        ARRAY['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis',
              'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson',
              'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin', 'Lee', 'Perez', 'Thompson',
              'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson', 'Walker',
              'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
              'Green', 'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell',
              'Carter', 'Roberts', 'Chen', 'Wang', 'Kim', 'Patel', 'Singh', 'Tanaka', 'Sato',
              'Müller', 'Schmidt', 'Novak', 'Kowalski', 'Ivanova', 'Okafor', 'Adeyemi',
              'O''Brien', 'O''Connor', 'McCarthy', 'Murphy', 'Kelly', 'Dubois', 'Lefèvre',
              'Rossi', 'Russo', 'Silva', 'Santos', 'Costa', 'Haddad', 'Khan', 'Cohen',
              'Van der Berg'] AS last_names
),
general AS (
    -- Employees 12..3000; 1 is the CEO, 2..11 the department heads.
    SELECT
        g AS id,
        -- Coprime moduli keep department, level and contract type independent.
        (g * 37 + 11) % 100 AS dept_bucket,
        CASE
            WHEN (g * 7919) % 97 < 29 THEN 0
            WHEN (g * 7919) % 97 < 58 THEN 1
            WHEN (g * 7919) % 97 < 80 THEN 2
            WHEN (g * 7919) % 97 < 90 THEN 3
            ELSE 4
        END AS level,
        CASE
            WHEN (g * 31) % 89 < 3 THEN 'intern'
            WHEN (g * 31) % 89 < 9 THEN 'contractor'
            WHEN (g * 31) % 89 < 14 THEN 'part_time'
            ELSE 'full_time'
        END AS employment_type
    FROM generate_series(12, 3000) AS g
)
SELECT
    p.id,
    n.first_names[(p.id * 31) % cardinality(n.first_names) + 1] AS first_name,
    n.last_names[(p.id * 17 + p.id / cardinality(n.first_names)) % cardinality(n.last_names) + 1]
        AS last_name,
    s.code,
    CASE WHEN p.employment_type = 'intern' THEN -1 ELSE p.level END AS level,
    p.employment_type
FROM general p
CROSS JOIN names n
JOIN seed_shares s ON p.dept_bucket >= s.lo AND p.dept_bucket < s.hi
UNION ALL
SELECT id, first_name, last_name, code, 5, 'full_time'
FROM (VALUES
    (1,  'Eleanor', 'Whitfield', 'EXEC'),
    (2,  'Marcus',  'Okonkwo',   'ENG'),
    (3,  'Rebecca', 'Lindqvist', 'SALES'),
    (4,  'Daniel',  'Ferreira',  'MKT'),
    (5,  'Grace',   'Nakamura',  'FIN'),
    (6,  'Samuel',  'Osei',      'HR'),
    (7,  'Hannah',  'Kowalczyk', 'SUP'),
    (8,  'Victor',  'Almeida',   'OPS'),
    (9,  'Irene',   'Castellano', 'LEGAL'),
    (10, 'Tobias',  'Brennan',   'PROD'),
    (11, 'Amara',   'Mensah',    'DATA')
) AS heads (id, first_name, last_name, code);

INSERT INTO employees (
    id, employee_number, first_name, last_name, email, phone, title, department_id,
    manager_id, hire_date, termination_date, salary, currency, employment_type, is_active,
    created_at, updated_at)
SELECT
    p.id,
    'E' || lpad(p.id::text, 5, '0'),
    p.first_name,
    p.last_name,
    -- first.last@example.com, with a number for the second and later namesakes.
    regexp_replace(
        translate(lower(p.first_name || '.' || p.last_name), 'áéíóúñçäëïöüèàø', 'aeiouncaeiouea'),
        '[^a-z.]', '', 'g')
        || CASE WHEN p.namesake > 1 THEN p.namesake::text ELSE '' END
        || '@example.com',
    CASE WHEN p.id % 11 = 0 THEN NULL
         ELSE '+1 555 ' || lpad(((p.id * 7907) % 1000)::text, 3, '0')
              || ' ' || lpad(((p.id * 4391) % 10000)::text, 4, '0') END,
    CASE
        WHEN p.id = 1 THEN 'Chief Executive Officer'
        WHEN p.level = 5 THEN 'VP of ' || d.name
        WHEN p.level = -1 THEN d.name || ' Intern'
        ELSE t.title
    END,
    d.id,
    NULL,
    p.hire_date,
    p.termination_date,
    round(
        CASE
            WHEN p.id = 1 THEN 420000
            WHEN p.level = 5 THEN 265000 + (p.id * 7919) % 40 * 1000
            WHEN p.level = -1 THEN 38000 + (p.id * 7919) % 9 * 500
            ELSE t.base * (0.92 + ((p.id * 7883) % 17) / 100.0)
        END
        * CASE WHEN p.employment_type = 'part_time' THEN 0.6 ELSE 1 END,
        2),
    'USD',
    p.employment_type,
    p.termination_date IS NULL,
    p.hire_date::timestamp AT TIME ZONE 'UTC' + interval '9 hours',
    least(coalesce(p.termination_date, p.hire_date + (p.id * 7919) % 900), date '2025-06-30')
        ::timestamp AT TIME ZONE 'UTC'
        + interval '17 hours'
FROM (
    SELECT
        h.*,
        -- About 8% have left, at most on 2025-06-30.
        CASE
            WHEN h.id > 11 AND (h.id * 53) % 101 < 9
                 AND h.hire_date + 200 + (h.id * 29) % 2000 <= date '2025-06-30'
            THEN h.hire_date + 200 + (h.id * 29) % 2000
        END AS termination_date
    FROM (
        SELECT
            sp.*,
            row_number() OVER (PARTITION BY sp.first_name, sp.last_name ORDER BY sp.id) AS namesake,
            CASE
                WHEN sp.id = 1 THEN date '2012-01-02'
                WHEN sp.level = 5 THEN date '2012-02-01' + (sp.id * 97) % 700
                ELSE date '2013-01-02' + (sp.id * 7907) % 4560
            END AS hire_date
        FROM seed_people sp
    ) AS h
) AS p
JOIN departments d ON d.code = p.code
LEFT JOIN seed_titles t ON t.code = p.code AND t.level = p.level
ORDER BY p.id;

-- Reporting lines: heads report to the CEO, managers to their head, everyone
-- else to one of the managers of their department (or the head if none).
UPDATE employees e SET manager_id = 1 WHERE e.id BETWEEN 2 AND 11;

UPDATE employees e
SET manager_id = head.id
FROM seed_people sp, seed_people head
WHERE sp.id = e.id AND sp.level = 4
  AND head.code = sp.code AND head.level = 5;

WITH managers AS (
    SELECT sp.id, sp.code,
           row_number() OVER (PARTITION BY sp.code ORDER BY sp.id) - 1 AS k,
           count(*) OVER (PARTITION BY sp.code) AS n
    FROM seed_people sp
    WHERE sp.level = 4
)
UPDATE employees e
SET manager_id = coalesce(
    (SELECT m.id FROM managers m
     WHERE m.code = sp.code AND m.k = sp.id % m.n),
    (SELECT head.id FROM seed_people head WHERE head.code = sp.code AND head.level = 5))
FROM seed_people sp
WHERE sp.id = e.id AND sp.level IN (-1, 0, 1, 2, 3);

-- The next employee gets the id after the seeded ones.
ALTER TABLE employees ALTER COLUMN id RESTART WITH 3001;

COMMIT;

ANALYZE departments;
ANALYZE employees;
