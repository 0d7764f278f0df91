/*
 * pytest_sqlaperf.capture._speedups: the recorder's per-statement listener in C.
 *
 * Runner is listeners.py's ``run`` (see _listener there), step for step: the same checks in the
 * same order, the same call-site walk, the same record appended to each active QueryLog, the
 * same calls into the Python helpers for everything that is not the usual case. It exists
 * because ``run`` runs for every statement of every test: in Python it is about 270 bytecodes a
 * statement, the largest part of the plugin's capture overhead (docs/benchmarks.md). The Python
 * function stays the reference and the fallback (no C compiler at install, or
 * SQLAPERF_PURE_PYTHON=1); tests/plugin/test_capture.py runs the capture tests against both.
 *
 * The object is a callable with vectorcall, weak-referenceable because SQLAlchemy's event
 * registry keeps weak references to listeners.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>
#if defined(__linux__)
#include <time.h>
#endif

static PyObject *str_root_connection, *str_allow_autobegin, *str_execute_style,
    *str_execution_options, *str_orm_load_options, *str_dialect, *str_dispatch,
    *str_parent_listeners, *str_rowcount, *str_f_lasti;

/*
 * State: what a Recorder's listeners read for each statement, held in C fields rather than
 * read as attributes. Not only to save the lookups: each attribute read looks the name up in
 * the type's attribute cache, a table of 4096 entries shared by the whole interpreter, and
 * every entry of ours can push out one of SQLAlchemy's hot ones; the misses then cost
 * SQLAlchemy a walk of its deep class hierarchies (callgrind counted up to 50,000 instructions
 * a statement, varying with memory layout, in docs/benchmarks.md's ORM loop). The Recorder
 * sets the fields when they change (listeners.py).
 */
typedef struct {
    PyObject_HEAD
    PyObject *logs;      /* a tuple of the active QueryLogs' record lists */
    PyObject *skipped;   /* CallSiteFinder.skipped (a set) */
    PyObject *user;      /* CallSiteFinder.user (a set) */
    PyObject *sites;     /* CallSiteFinder.sites (a dict) */
    PyObject *find;      /* CallSiteFinder.find */
    PyObject *loaded_by; /* id(InstanceState) -> serial (a dict) */
    PyObject *serials;   /* an iterator of serials */
    PyObject *after;     /* after_statement, or None */
    PyObject *quiet;     /* what after_statement said brings nothing new (see call_after) */
    PyObject *key;       /* this state's key in each thread's state dict: the last serial */
} State;

static int
state_traverse(State *self, visitproc visit, void *arg)
{
    Py_VISIT(self->logs);
    Py_VISIT(self->skipped);
    Py_VISIT(self->user);
    Py_VISIT(self->sites);
    Py_VISIT(self->find);
    Py_VISIT(self->loaded_by);
    Py_VISIT(self->serials);
    Py_VISIT(self->after);
    Py_VISIT(self->quiet);
    return 0;
}

static int
state_clear(State *self)
{
    Py_CLEAR(self->logs);
    Py_CLEAR(self->skipped);
    Py_CLEAR(self->user);
    Py_CLEAR(self->sites);
    Py_CLEAR(self->find);
    Py_CLEAR(self->loaded_by);
    Py_CLEAR(self->serials);
    Py_CLEAR(self->after);
    Py_CLEAR(self->quiet);
    return 0;
}

static void
state_dealloc(State *self)
{
    PyObject_GC_UnTrack(self);
    state_clear(self);
    Py_CLEAR(self->key);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
state_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"serials", NULL};
    PyObject *serials;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:State", names, &serials)) {
        return NULL;
    }
    State *self = (State *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    /* the key is the state's address, not the state: a thread's dict must not keep it alive */
    self->key = PyUnicode_FromFormat("pytest_sqlaperf.serial.%p", (void *)self);
    self->logs = PyTuple_New(0);
    self->sites = PyDict_New();
    self->loaded_by = PyDict_New();
    self->skipped = PySet_New(NULL);
    self->user = PySet_New(NULL);
    self->quiet = PyDict_New();
    if (self->key == NULL || self->logs == NULL || self->sites == NULL
        || self->loaded_by == NULL || self->skipped == NULL || self->user == NULL
        || self->quiet == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(Py_None);
    self->find = Py_None;
    Py_INCREF(Py_None);
    self->after = Py_None;
    Py_INCREF(serials);
    self->serials = serials;
    return (PyObject *)self;
}

/* The serial of the last statement this state recorded in the running thread, or None. */
static PyObject *
state_last_serial(State *self, PyObject *unused)
{
    PyObject *thread = PyThreadState_GetDict();
    PyObject *serial = thread != NULL ? PyDict_GetItemWithError(thread, self->key) : NULL;
    if (serial == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    Py_INCREF(serial);
    return serial;
}

static PyMethodDef state_methods[] = {
    {"last_serial", (PyCFunction)state_last_serial, METH_NOARGS,
     "The serial of the last statement recorded in this thread, or None."},
    {NULL}};

static PyMemberDef state_members[] = {
    {"logs", T_OBJECT_EX, offsetof(State, logs), 0, "The active logs' record lists (a tuple)."},
    {"skipped", T_OBJECT_EX, offsetof(State, skipped), 0, "CallSiteFinder.skipped."},
    {"user", T_OBJECT_EX, offsetof(State, user), 0, "CallSiteFinder.user."},
    {"sites", T_OBJECT_EX, offsetof(State, sites), 0, "CallSiteFinder.sites."},
    {"find", T_OBJECT_EX, offsetof(State, find), 0, "CallSiteFinder.find."},
    {"loaded_by", T_OBJECT_EX, offsetof(State, loaded_by), 0, "id(InstanceState) -> serial."},
    {"serials", T_OBJECT_EX, offsetof(State, serials), 0, "The serials' iterator."},
    {"after_statement", T_OBJECT_EX, offsetof(State, after), 0, "Called after each statement."},
    {"quiet", T_OBJECT_EX, offsetof(State, quiet), 0,
     "Fingerprint -> True, or a set of values keys: after_statement is not called for them."},
    {NULL}};

static PyTypeObject StateType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pytest_sqlaperf.capture._speedups.State",
    .tp_basicsize = sizeof(State),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What a Recorder's C listeners read for each statement (see listeners.py).",
    .tp_new = state_new,
    .tp_dealloc = (destructor)state_dealloc,
    .tp_traverse = (traverseproc)state_traverse,
    .tp_clear = (inquiry)state_clear,
    .tp_members = state_members,
    .tp_methods = state_methods,
};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *weakreflist;
    PyObject *name;            /* the event: do_execute, do_executemany, do_execute_no_params */
    int executemany;
    int no_params;
    int skip;                  /* frames from the caller's to the first the walk looks at */
    PyObject *state;           /* the State of the recorder that records (listeners._current) */
    PyObject *execute;         /* listeners._execute(name, listener, dialect, arguments) */
    PyObject *shape_of;
    PyObject *from_context;    /* ormloads.from_context(context, loaded_by) */
    PyObject *insertmany_rows; /* listeners._insertmanyvalues_rows(context, parameters) */
    PyObject *insertmanyvalues;/* ExecuteStyle.INSERTMANYVALUES */
    PyObject *empty_listener;  /* sqlalchemy.event.attr._EmptyListener */
    PyObject *statement_type;  /* querylog.Statement */
    PyObject *perf_counter;
} Runner;

#define RECORD_FIELDS 13 /* querylog._ITEMS */

static int
runner_traverse(Runner *self, visitproc visit, void *arg)
{
    Py_VISIT(self->name);
    Py_VISIT(self->state);
    Py_VISIT(self->execute);
    Py_VISIT(self->shape_of);
    Py_VISIT(self->from_context);
    Py_VISIT(self->insertmany_rows);
    Py_VISIT(self->insertmanyvalues);
    Py_VISIT(self->empty_listener);
    Py_VISIT(self->statement_type);
    Py_VISIT(self->perf_counter);
    return 0;
}

static int
runner_clear(Runner *self)
{
    Py_CLEAR(self->name);
    Py_CLEAR(self->state);
    Py_CLEAR(self->execute);
    Py_CLEAR(self->shape_of);
    Py_CLEAR(self->from_context);
    Py_CLEAR(self->insertmany_rows);
    Py_CLEAR(self->insertmanyvalues);
    Py_CLEAR(self->empty_listener);
    Py_CLEAR(self->statement_type);
    Py_CLEAR(self->perf_counter);
    return 0;
}

static void
runner_dealloc(Runner *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    runner_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Run the statement as SQLAlchemy would have without us: the dialect's method when ours is
 * the event's only listener (the usual case), else listeners._execute, which runs the
 * listeners registered after ours. A new reference to the result, NULL on error. */
static PyObject *
run_statement(Runner *self, PyObject *dialect, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *dispatch = PyObject_GetAttr(dialect, str_dispatch);
    if (dispatch == NULL) {
        return NULL;
    }
    PyObject *listeners = PyObject_GetAttr(dispatch, self->name);
    Py_DECREF(dispatch);
    if (listeners == NULL) {
        return NULL;
    }
    int only_ours = 0;
    if ((PyObject *)Py_TYPE(listeners) == self->empty_listener) {
        PyObject *parents = PyObject_GetAttr(listeners, str_parent_listeners);
        if (parents == NULL) {
            Py_DECREF(listeners);
            return NULL;
        }
        Py_ssize_t count = PyObject_Length(parents);
        Py_DECREF(parents);
        if (count < 0) {
            Py_DECREF(listeners);
            return NULL;
        }
        only_ours = count == 1;
    }
    Py_DECREF(listeners);
    if (only_ours) { /* dialect.<event>(*args), without making the bound method */
        PyObject *stack[5] = {dialect, NULL, NULL, NULL, NULL};
        for (Py_ssize_t i = 0; i < nargs && i < 4; i++) {
            stack[i + 1] = args[i];
        }
        return PyObject_VectorcallMethod(self->name, stack, (size_t)nargs + 1, NULL);
    }
    PyObject *arguments = PyTuple_New(nargs);
    if (arguments == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(arguments, i, args[i]);
    }
    PyObject *result = PyObject_CallFunctionObjArgs(
        self->execute, self->name, (PyObject *)self, dialect, arguments, NULL);
    Py_DECREF(arguments);
    return result;
}

/* Truth of getattr(obj, name); -1 on error. */
static int
attribute_is_true(PyObject *obj, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* The call site: the first frame, from ``skip`` frames above the caller's outwards, whose file
 * is not in the finder's skipped files; its CallSite from the finder's sites when its file is a
 * user file and the line was seen before, else find(frame). A new reference, NULL on error. */
static PyObject *
call_site(Runner *self, State *state)
{
    PyObject *skipped = state->skipped, *user = state->user, *sites = state->sites;
    if (!PyAnySet_Check(skipped) || !PyAnySet_Check(user) || !PyDict_Check(sites)) {
        PyErr_SetString(PyExc_TypeError, "State: skipped and user must be sets, sites a dict");
        return NULL;
    }
    PyFrameObject *frame = PyEval_GetFrame(); /* borrowed: the listener's caller */
    Py_XINCREF(frame);
    for (int i = 0; i < self->skip && frame != NULL; i++) {
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    PyObject *site = NULL;
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int in_skipped = PySet_Contains(skipped, code->co_filename);
        Py_DECREF(code);
        if (in_skipped < 0) {
            goto error;
        }
        if (!in_skipped) {
            break;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    if (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        int in_user = PySet_Contains(user, code->co_filename);
        if (in_user > 0) {
#if PY_VERSION_HEX >= 0x030B0000
            PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti(frame));
#else
            PyObject *lasti = PyObject_GetAttr((PyObject *)frame, str_f_lasti);
#endif
            PyObject *key = NULL;
            if (lasti != NULL) {
                PyObject *line = PyLong_FromLong(code->co_firstlineno);
                if (line != NULL) {
                    key = PyTuple_Pack(3, code->co_filename, line, lasti);
                    Py_DECREF(line);
                }
                Py_DECREF(lasti);
            }
            if (key != NULL) {
                site = PyDict_GetItemWithError(sites, key); /* borrowed */
                Py_XINCREF(site);
                Py_DECREF(key);
            }
            if (site == NULL && PyErr_Occurred()) {
                in_user = -1;
            }
            else if (site == Py_None) {
                Py_CLEAR(site);
            }
        }
        Py_DECREF(code);
        if (in_user < 0) {
            goto error;
        }
    }
    if (site == NULL) { /* a file or a line not seen before, or the bottom of the stack */
        site = PyObject_CallOneArg(state->find, frame != NULL ? (PyObject *)frame : Py_None);
    }
    Py_XDECREF(frame);
    return site;
error:
    Py_XDECREF(frame);
    return NULL;
}

/* perf_counter() as a double; -1.0 with an exception set on error. On Linux, the clock
 * perf_counter() reads (CLOCK_MONOTONIC), read without the call. */
static double
now(Runner *self)
{
#if defined(__linux__) && defined(CLOCK_MONOTONIC)
    struct timespec clock;
    if (clock_gettime(CLOCK_MONOTONIC, &clock) == 0) {
        return (double)clock.tv_sec + (double)clock.tv_nsec * 1e-9;
    }
#endif
    PyObject *value = PyObject_CallNoArgs(self->perf_counter);
    if (value == NULL) {
        return -1.0;
    }
    double seconds = PyFloat_AsDouble(value);
    Py_DECREF(value);
    return seconds;
}

/* The QueryLog record (see querylog.QueryLog): the ten Statement fields, the parent serial, the
 * serial, the count of items, then the parameters' items (a dict's keys then its values, or a
 * tuple's or list's items) with their form in field 4. */
static PyObject *
make_record(Runner *self, PyObject *const fields[12], PyObject *parameters)
{
    PyObject *form = (PyObject *)Py_TYPE(parameters);
    Py_ssize_t items = 0;
    int kind = 0; /* 0: kept as it is, 1: a dict, 2: a tuple or list */
    if (PyDict_CheckExact(parameters)) {
        kind = 1;
        items = 2 * PyDict_GET_SIZE(parameters);
    }
    else if ((PyTuple_CheckExact(parameters) || PyList_CheckExact(parameters))
             && !self->executemany) {
        kind = 2;
        items = Py_SIZE(parameters);
    }
    PyObject *record = PyTuple_New(RECORD_FIELDS + items);
    if (record == NULL) {
        return NULL;
    }
    for (int i = 0; i < 12; i++) {
        PyObject *value = (i == 4) ? (kind ? form : parameters) : fields[i];
        Py_INCREF(value);
        PyTuple_SET_ITEM(record, i, value);
    }
    PyObject *count = PyLong_FromSsize_t(items);
    if (count == NULL) {
        Py_DECREF(record);
        return NULL;
    }
    PyTuple_SET_ITEM(record, 12, count);
    if (kind == 1) {
        Py_ssize_t position = 0, half = items / 2, at = 0;
        PyObject *key, *value;
        while (PyDict_Next(parameters, &position, &key, &value) && at < half) {
            Py_INCREF(key);
            PyTuple_SET_ITEM(record, RECORD_FIELDS + at, key);
            Py_INCREF(value);
            PyTuple_SET_ITEM(record, RECORD_FIELDS + half + at, value);
            at++;
        }
    }
    else if (kind == 2) {
        PyObject **source = PyTuple_CheckExact(parameters)
                                ? &PyTuple_GET_ITEM(parameters, 0)
                                : &PyList_GET_ITEM(parameters, 0);
        for (Py_ssize_t i = 0; i < items; i++) {
            Py_INCREF(source[i]);
            PyTuple_SET_ITEM(record, RECORD_FIELDS + i, source[i]);
        }
    }
    return record;
}

/* Append the record to each active log's record list (one list operation, atomic under the
 * GIL), and note its serial as the thread's last. */
static int
append_record(State *state, PyObject *record, PyObject *serial)
{
    PyObject *thread = PyThreadState_GetDict();
    if (thread == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no thread state dict");
        return -1;
    }
    /* what the ORM loads next, in this thread, came from it */
    if (PyDict_SetItem(thread, state->key, serial) < 0) {
        return -1;
    }
    PyObject *logs = state->logs;
    if (!PyTuple_CheckExact(logs)) {
        PyErr_SetString(PyExc_TypeError, "State.logs must be a tuple of lists");
        return -1;
    }
    Py_INCREF(logs);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(logs); i++) {
        PyObject *data = PyTuple_GET_ITEM(logs, i);
        if (!PyList_CheckExact(data)) {
            PyErr_SetString(PyExc_TypeError, "State.logs must be a tuple of lists");
            Py_DECREF(logs);
            return -1;
        }
        Py_ssize_t end = PyList_GET_SIZE(data);
        if (PyList_SetSlice(data, end, end, record) < 0) {
            Py_DECREF(logs);
            return -1;
        }
    }
    Py_DECREF(logs);
    return 0;
}

/* An after_statement hook's answers (listeners.QUIET_VALUES and QUIET_SHAPE): the statement's
 * values, or any values of its shape, bring it nothing new until the recorder forgets them. */
#define QUIET_VALUES 1
#define QUIET_SHAPE 2

/* The key of a statement's values among its shape's quiet ones, as listeners._quiet_key and
 * explain.values_key compute it: hash(tuple(values)) of a dict, a list or a tuple, hash(None)
 * without parameters. NULL without an error when there is none: executemany, other forms,
 * values that cannot be hashed (the hook is then called for every statement, as before). */
static PyObject *
quiet_key(Runner *self, PyObject *parameters)
{
    PyObject *values;
    if (self->executemany) {
        return NULL;
    }
    if (PyDict_CheckExact(parameters)) {
        Py_ssize_t size = PyDict_GET_SIZE(parameters), position = 0, at = 0;
        PyObject *key, *value;
        values = PyTuple_New(size);
        if (values == NULL) {
            return NULL;
        }
        while (at < size && PyDict_Next(parameters, &position, &key, &value)) {
            Py_INCREF(value);
            PyTuple_SET_ITEM(values, at++, value);
        }
        if (at != size) { /* cannot happen: nothing runs between PyDict_Next calls */
            Py_DECREF(values);
            return NULL;
        }
    }
    else if (PyList_CheckExact(parameters)) {
        values = PyList_AsTuple(parameters);
        if (values == NULL) {
            return NULL;
        }
    }
    else if (PyTuple_CheckExact(parameters) || parameters == Py_None) {
        values = parameters;
        Py_INCREF(values);
    }
    else {
        return NULL;
    }
    Py_hash_t hash = PyObject_Hash(values);
    Py_DECREF(values);
    if (hash == -1) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear(); /* unhashable values: no key */
        }
        return NULL;
    }
    return PyLong_FromSsize_t(hash);
}

/* Hand the statement (its ten Statement fields) to the after_statement hook, unless the hook
 * said before that its shape, or these values of it, bring nothing new (state->quiet, which
 * the recorder empties at each test: listeners.Recorder.forget_quiet); note what it says
 * now. 0, or -1 with an exception set. */
static int
call_after(Runner *self, State *state, PyObject *const fields[10], PyObject *cursor,
           PyObject *context)
{
    PyObject *quiet = state->quiet, *fingerprint = fields[2], *after = state->after;
    PyObject *key = NULL, *entry, *made = NULL, *root = NULL, *called = NULL;
    int outcome = -1;
    if (!PyDict_CheckExact(quiet)) {
        PyErr_SetString(PyExc_TypeError, "State.quiet must be a dict");
        return -1;
    }
    Py_INCREF(quiet); /* the hook may give the recorder new ones */
    Py_INCREF(after);
    entry = PyDict_GetItemWithError(quiet, fingerprint); /* borrowed: no code runs between */
    if (entry == NULL && PyErr_Occurred()) {
        goto done;
    }
    if (entry == Py_True) { /* the shape is quiet */
        outcome = 0;
        goto done;
    }
    key = quiet_key(self, fields[4]);
    if (key == NULL && PyErr_Occurred()) {
        goto done;
    }
    if (key != NULL && entry != NULL) {
        /* hashing the values may have run their __hash__: the entry again, after it */
        entry = PyDict_GetItemWithError(quiet, fingerprint);
        if (entry == NULL && PyErr_Occurred()) {
            goto done;
        }
        if (entry != NULL && PyAnySet_Check(entry)) {
            int found = PySet_Contains(entry, key);
            if (found != 0) { /* these values are quiet, or an error */
                outcome = found > 0 ? 0 : -1;
                goto done;
            }
        }
    }
    {
        PyObject *tuple = PyTuple_New(10);
        if (tuple == NULL) {
            goto done;
        }
        for (int i = 0; i < 10; i++) {
            Py_INCREF(fields[i]);
            PyTuple_SET_ITEM(tuple, i, fields[i]);
        }
        PyObject *pack = PyTuple_Pack(1, tuple);
        Py_DECREF(tuple);
        if (pack == NULL) {
            goto done;
        }
        made = PyTuple_Type.tp_new((PyTypeObject *)self->statement_type, pack, NULL);
        Py_DECREF(pack);
    }
    if (made == NULL) {
        goto done;
    }
    root = PyObject_GetAttr(context, str_root_connection);
    if (root == NULL) {
        goto done;
    }
    called = PyObject_CallFunctionObjArgs(after, made, root, cursor, context, NULL);
    if (called == NULL) {
        goto done;
    }
    if (PyLong_CheckExact(called)) {
        long verdict = PyLong_AsLong(called);
        if (verdict == -1 && PyErr_Occurred()) {
            goto done;
        }
        if (verdict == QUIET_SHAPE) {
            if (PyDict_SetItem(quiet, fingerprint, Py_True) < 0) {
                goto done;
            }
        }
        else if (verdict == QUIET_VALUES && key != NULL) {
            entry = PyDict_GetItemWithError(quiet, fingerprint); /* borrowed */
            if (entry == NULL) {
                if (PyErr_Occurred()) {
                    goto done;
                }
                entry = PySet_New(NULL);
                if (entry == NULL) {
                    goto done;
                }
                int stored = PyDict_SetItem(quiet, fingerprint, entry);
                Py_DECREF(entry); /* the dict holds it */
                if (stored < 0) {
                    goto done;
                }
            }
            if (PySet_Check(entry) && PySet_Add(entry, key) < 0) {
                goto done;
            }
        }
    }
    outcome = 0;
done:
    Py_XDECREF(key);
    Py_XDECREF(made);
    Py_XDECREF(root);
    Py_XDECREF(called);
    Py_DECREF(after);
    Py_DECREF(quiet);
    return outcome;
}

static PyObject *
runner_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Runner *self = (Runner *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t expected = self->no_params ? 3 : 4;
    if (nargs != expected || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_Format(PyExc_TypeError, "the %U listener takes %zd positional arguments",
                     self->name, expected);
        return NULL;
    }
    PyObject *cursor = args[0], *statement = args[1], *context = args[nargs - 1];
    PyObject *parameters = self->no_params ? Py_None : args[2];
    State *state = (State *)self->state;
    PyObject *site = NULL, *shape = NULL, *rows = NULL, *orm = NULL, *serial = NULL,
             *dialect = NULL, *duration = NULL, *rowcount = NULL, *record = NULL,
             *result = NULL;
    PyObject *orm_load = Py_None, *parent = Py_None;
    PyObject *failure_type = NULL, *failure = NULL, *failure_traceback = NULL;
    double started;
    int truth, recorded;

    if (state == NULL || Py_TYPE(state) != &StateType) { /* None: no recorder records */
        goto pass_through;
    }
    if (state->logs == NULL || state->skipped == NULL || state->user == NULL
        || state->sites == NULL || state->find == NULL || state->loaded_by == NULL
        || state->serials == NULL || state->after == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a State attribute was deleted");
        return NULL;
    }
    if (!PyTuple_CheckExact(state->logs) || PyTuple_GET_SIZE(state->logs) == 0) {
        goto pass_through;
    }
    /* not the dialect's own first-connect queries (see listeners.py) */
    {
        PyObject *root = PyObject_GetAttr(context, str_root_connection);
        if (root == NULL) {
            return NULL;
        }
        truth = attribute_is_true(root, str_allow_autobegin);
        Py_DECREF(root);
        if (truth <= 0) {
            if (truth < 0) {
                return NULL;
            }
            goto pass_through;
        }
    }
    Py_INCREF(state); /* the recorder may change while the statement runs */
    site = call_site(self, state);
    if (site == NULL) {
        goto error;
    }
    shape = PyObject_CallOneArg(self->shape_of, statement);
    if (shape == NULL) {
        goto error;
    }
    /* fingerprint.Shape is a named tuple: (fingerprint, display_sql, kind) */
    if (!PyTuple_Check(shape) || PyTuple_GET_SIZE(shape) != 3) {
        PyErr_SetString(PyExc_TypeError, "shape_of must return a Shape (a named tuple)");
        goto error;
    }
    if (self->executemany) {
        Py_ssize_t n = PyObject_Length(parameters);
        if (n < 0) {
            goto error;
        }
        rows = PyLong_FromSsize_t(n);
    }
    else if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(shape, 2), "insert") == 0) {
        /* only an INSERT runs as insertmanyvalues batches */
        PyObject *style = PyObject_GetAttr(context, str_execute_style);
        if (style == NULL) {
            goto error;
        }
        int many_values = style == self->insertmanyvalues;
        Py_DECREF(style);
        rows = many_values ? PyObject_CallFunctionObjArgs(self->insertmany_rows, context,
                                                          parameters, NULL)
                           : PyLong_FromLong(1);
    }
    else {
        rows = PyLong_FromLong(1);
    }
    if (rows == NULL) {
        goto error;
    }
    {
        PyObject *options = PyObject_GetAttr(context, str_execution_options);
        if (options == NULL) {
            goto error;
        }
        int orm_execution = PySequence_Contains(options, str_orm_load_options);
        Py_DECREF(options);
        if (orm_execution < 0) {
            goto error;
        }
        if (orm_execution) {
            orm = PyObject_CallFunctionObjArgs(self->from_context, context, state->loaded_by,
                                               NULL);
            if (orm == NULL) {
                goto error;
            }
            if (!PyTuple_CheckExact(orm) || PyTuple_GET_SIZE(orm) != 2) {
                PyErr_SetString(PyExc_TypeError, "from_context must return a pair");
                goto error;
            }
            orm_load = PyTuple_GET_ITEM(orm, 0);
            parent = PyTuple_GET_ITEM(orm, 1);
        }
    }
    serial = PyIter_Next(state->serials);
    if (serial == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "the recorder's serials ran out");
        }
        goto error;
    }
    dialect = PyObject_GetAttr(context, str_dialect);
    if (dialect == NULL) {
        goto error;
    }

    /* run it, then record it, ran or failed */
    started = now(self);
    if (started == -1.0 && PyErr_Occurred()) {
        goto error;
    }
    result = run_statement(self, dialect, args, nargs);
    if (result != NULL) {
        double ended = now(self);
        if (!(ended == -1.0 && PyErr_Occurred())) {
            duration = PyFloat_FromDouble(ended - started);
        }
        if (duration != NULL) {
            PyObject *count = PyObject_GetAttr(cursor, str_rowcount);
            if (count == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
                PyErr_Clear();
            }
            else if (count != NULL) {
                int overflow = 0;
                long value = PyLong_CheckExact(count) ? PyLong_AsLongAndOverflow(count, &overflow)
                                                      : -1;
                if (value >= 0 || overflow > 0) {
                    rowcount = count;
                }
                else {
                    Py_DECREF(count);
                }
            }
        }
    }
    if (PyErr_Occurred()) {
        PyErr_Fetch(&failure_type, &failure, &failure_traceback);
    }
    {
        PyObject *fields[12] = {statement,
                                PyTuple_GET_ITEM(shape, 1),
                                PyTuple_GET_ITEM(shape, 0),
                                PyTuple_GET_ITEM(shape, 2),
                                parameters,
                                rows,
                                site,
                                orm_load,
                                duration ? duration : Py_None,
                                rowcount ? rowcount : Py_None,
                                parent,
                                serial};
        record = make_record(self, fields, parameters);
    }
    recorded = record != NULL && append_record(state, record, serial) == 0;
    if (failure_type != NULL) {
        if (!recorded) { /* the statement's own error is the one to raise */
            PyErr_WriteUnraisable(callable);
        }
        PyErr_Restore(failure_type, failure, failure_traceback);
        goto error;
    }
    if (!recorded) {
        goto error;
    }
    if (state->after != Py_None) {
        /* the parameters as they are (what EXPLAIN reads), not as the record keeps them */
        PyObject *fields[10] = {statement,
                                PyTuple_GET_ITEM(shape, 1),
                                PyTuple_GET_ITEM(shape, 0),
                                PyTuple_GET_ITEM(shape, 2),
                                parameters,
                                rows,
                                site,
                                orm_load,
                                duration ? duration : Py_None,
                                rowcount ? rowcount : Py_None};
        if (call_after(self, state, fields, cursor, context) < 0) {
            goto error;
        }
    }
    Py_DECREF(result);
    result = Py_True;
    Py_INCREF(result);
    goto done;

error:
    Py_CLEAR(result);
done:
    Py_XDECREF(site);
    Py_XDECREF(shape);
    Py_XDECREF(rows);
    Py_XDECREF(orm);
    Py_XDECREF(serial);
    Py_XDECREF(dialect);
    Py_XDECREF(duration);
    Py_XDECREF(rowcount);
    Py_XDECREF(record);
    Py_DECREF(state);
    return result;

pass_through:
    dialect = PyObject_GetAttr(context, str_dialect);
    if (dialect == NULL) {
        return NULL;
    }
    result = run_statement(self, dialect, args, nargs);
    Py_DECREF(dialect);
    if (result == NULL) {
        return NULL;
    }
    Py_DECREF(result);
    Py_RETURN_TRUE;
}

static PyObject *
runner_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *names[] = {"name", "executemany", "no_params", "skip", "execute", "shape_of",
                            "from_context", "insertmany_rows", "insertmanyvalues",
                            "empty_listener", "statement_type", "perf_counter", NULL};
    PyObject *name, *execute, *shape_of, *from_context, *insertmany_rows, *insertmanyvalues,
        *empty_listener, *statement_type, *perf_counter;
    int executemany, no_params, skip;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Uppi$OOOOOOOO:Runner", names, &name,
                                     &executemany, &no_params, &skip, &execute, &shape_of,
                                     &from_context, &insertmany_rows, &insertmanyvalues,
                                     &empty_listener, &statement_type, &perf_counter)) {
        return NULL;
    }
    if (!PyType_Check(statement_type)
        || !PyType_IsSubtype((PyTypeObject *)statement_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "statement_type must be a tuple subclass");
        return NULL;
    }
    Runner *self = (Runner *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = runner_vectorcall;
    self->weakreflist = NULL;
    Py_INCREF(name);
    self->name = PyUnicode_InternFromString(PyUnicode_AsUTF8(name));
    Py_DECREF(name);
    if (self->name == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->executemany = executemany;
    self->no_params = no_params;
    self->skip = skip;
    Py_INCREF(Py_None);
    self->state = Py_None;
#define KEEP(field) Py_INCREF(field); self->field = field
    KEEP(execute);
    KEEP(shape_of);
    KEEP(from_context);
    KEEP(insertmany_rows);
    KEEP(insertmanyvalues);
    KEEP(empty_listener);
    KEEP(statement_type);
    KEEP(perf_counter);
#undef KEEP
    return (PyObject *)self;
}

static PyObject *
runner_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return PyVectorcall_Call(self, args, kwargs);
}

static PyObject *
runner_repr(Runner *self)
{
    return PyUnicode_FromFormat("<pytest_sqlaperf listener of %U (C)>", self->name);
}

static PyMemberDef runner_members[] = {
    {"state", T_OBJECT_EX, offsetof(Runner, state), 0,
     "The State of the recorder that records (listeners._current), or None."},
    {"name", T_OBJECT, offsetof(Runner, name), READONLY, "The event listened to."},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(Runner, weakreflist), READONLY},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(Runner, vectorcall), READONLY},
    {NULL}};

static PyTypeObject RunnerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pytest_sqlaperf.capture._speedups.Runner",
    .tp_basicsize = sizeof(Runner),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The recorder's listener of one of the dialect's execute events (see listeners.py).",
    .tp_new = runner_new,
    .tp_dealloc = (destructor)runner_dealloc,
    .tp_traverse = (traverseproc)runner_traverse,
    .tp_clear = (inquiry)runner_clear,
    .tp_call = runner_call,
    .tp_vectorcall_offset = offsetof(Runner, vectorcall),
    .tp_weaklistoffset = offsetof(Runner, weakreflist),
    .tp_members = runner_members,
    .tp_repr = (reprfunc)runner_repr,
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pytest_sqlaperf.capture._speedups",
    .m_doc = "The recorder's per-statement listener in C (see listeners.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#define INTERN(variable, text)                                                                 \
    if ((variable = PyUnicode_InternFromString(text)) == NULL) {                               \
        return NULL;                                                                           \
    }
    INTERN(str_root_connection, "root_connection");
    INTERN(str_allow_autobegin, "_allow_autobegin");
    INTERN(str_execute_style, "execute_style");
    INTERN(str_execution_options, "execution_options");
    INTERN(str_orm_load_options, "_sa_orm_load_options");
    INTERN(str_dialect, "dialect");
    INTERN(str_dispatch, "dispatch");
    INTERN(str_parent_listeners, "parent_listeners");
    INTERN(str_rowcount, "rowcount");
    INTERN(str_f_lasti, "f_lasti");
#undef INTERN
    if (PyType_Ready(&RunnerType) < 0 || PyType_Ready(&StateType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&RunnerType);
    if (PyModule_AddObject(module, "Runner", (PyObject *)&RunnerType) < 0) {
        Py_DECREF(&RunnerType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&StateType);
    if (PyModule_AddObject(module, "State", (PyObject *)&StateType) < 0) {
        Py_DECREF(&StateType);
        Py_DECREF(module);
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "QUIET_VALUES", QUIET_VALUES) < 0
        || PyModule_AddIntConstant(module, "QUIET_SHAPE", QUIET_SHAPE) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
