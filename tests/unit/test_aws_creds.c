/*
 * test_aws_creds.c - the responder's credentials chain (response/creds.h) against real files and
 * a loopback stand-in for IMDSv2 and STS (tests/unit/aws_stub.py, Python standard library, on
 * 127.0.0.1 port 0, recording every request): environment first, then web identity, then the
 * shared files with profiles, then IMDSv2 with its session token; AssumeRole is signed with
 * SigV4 (the stub recomputes the signature in Python and refuses a wrong one) and a refusal
 * names the permission. ch_aws_call (response/aws_call.h) against the stub's EC2 (Query/XML)
 * and Route 53 Resolver (JSON 1.1) shapes: throttling is retried with backoff until it passes
 * or the attempts run out, a refusal is not retried and names the missing permission. python3
 * missing fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "response/aws_call.h"
#include "response/creds.h"

static char dir[64], portfile[128], logfile[128], url[64];
static pid_t stub;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strcpy(buf, "");
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void clear_env(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                                       "AWS_ROLE_ARN",      "AWS_ROLE_SESSION_NAME",
                                       "AWS_PROFILE",       "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE",   "AWS_EC2_METADATA_DISABLED"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    char p[160];
    snprintf(p, sizeof p, "%s/none", dir);
    setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
    setenv("AWS_CONFIG_FILE", p, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ENDPOINT_URL_STS", url, 1);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unlink(logfile);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/ch_creds_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(portfile, sizeof portfile, "%s/port", dir);
    snprintf(logfile, sizeof logfile, "%s/requests.jsonl", dir);
    if (system("command -v python3 >/dev/null 2>&1") != 0) {
        fprintf(stderr, "python3 is needed for the loopback AWS endpoint\n");
        return -1;
    }
    stub = fork();
    if (stub == 0) {
        execlp("python3", "python3", CH_SOURCE_DIR "/tests/unit/aws_stub.py", portfile, logfile,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(portfile, "r");
        int port = 0;
        if (f != NULL && fscanf(f, "%d", &port) == 1 && port > 0) {
            fclose(f);
            snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
            return 0;
        }
        if (f != NULL)
            fclose(f);
        usleep(50000);
    }
    return -1;
}

static int teardown(void **state)
{
    (void)state;
    if (stub > 0) {
        kill(stub, SIGTERM);
        waitpid(stub, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_environment_comes_first(void **state)
{
    (void)state;
    clear_env();
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);
    ch_aws_creds c;
    ch_error err = {0};
    assert_int_equal(ch_aws_creds_chain(&c, &err), 0);
    assert_string_equal(c.source, "env");
    assert_string_equal(c.access_key, "AKIAENV");
    assert_string_equal(c.session_token, "envtoken");
    assert_string_equal(slurp(logfile), ""); /* nothing was asked over the network */
}

static void test_shared_files_with_profiles(void **state)
{
    (void)state;
    clear_env();
    char cred[160], conf[160];
    snprintf(cred, sizeof cred, "%s/credentials", dir);
    snprintf(conf, sizeof conf, "%s/config", dir);
    write_file(cred, "# keys\n[default]\naws_access_key_id = AKIADEFAULT\n"
                     "aws_secret_access_key=defsecret\n\n[ops]\n  aws_access_key_id = AKIAOPS  \n"
                     "aws_secret_access_key = ops/secret+x\n");
    write_file(conf, "[default]\nregion = us-east-1\n[profile cfg]\n; from config\n"
                     "aws_access_key_id = AKIACFG\naws_secret_access_key = cfgsecret\n"
                     "aws_session_token = cfgtoken\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);
    ch_aws_creds c;
    ch_error err = {0};
    assert_int_equal(ch_aws_creds_chain(&c, &err), 0);
    assert_string_equal(c.access_key, "AKIADEFAULT");
    assert_string_equal(c.source, "shared-files");
    setenv("AWS_PROFILE", "ops", 1);
    assert_int_equal(ch_aws_creds_chain(&c, &err), 0);
    assert_string_equal(c.access_key, "AKIAOPS");
    assert_string_equal(c.secret_key, "ops/secret+x");
    setenv("AWS_PROFILE", "cfg", 1);
    assert_int_equal(ch_aws_creds_chain(&c, &err), 0);
    assert_string_equal(c.access_key, "AKIACFG");
    assert_string_equal(c.session_token, "cfgtoken");
    setenv("AWS_PROFILE", "nobody", 1);
    assert_int_equal(ch_aws_creds_chain(&c, &err), CH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "profile nobody"));
    /* A broken line is refused with its file and line. */
    write_file(cred, "[default]\naws_access_key_id AKIA\n");
    setenv("AWS_PROFILE", "default", 1);
    assert_int_equal(ch_aws_creds_chain(&c, &err), CH_EPARSE);
    char want[200];
    snprintf(want, sizeof want, "%s:2:", cred);
    assert_non_null(strstr(err.msg, want));
}

static void test_web_identity_exchanges_the_token(void **state)
{
    (void)state;
    clear_env();
    char tok[160];
    snprintf(tok, sizeof tok, "%s/token", dir);
    write_file(tok, "good-token\n");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
    setenv("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/responder", 1);
    ch_aws_creds c;
    ch_error err = {0};
    if (ch_aws_creds_chain(&c, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(c.source, "web-identity");
    assert_string_equal(c.access_key, "ASIASTUBWEB");
    assert_string_equal(c.session_token, "token&WEB"); /* &amp; decoded */
    assert_int_equal(c.expires_ms, 1893456000000LL);
    const char *log = slurp(logfile);
    assert_non_null(strstr(log, "Action=AssumeRoleWithWebIdentity"));
    assert_non_null(strstr(log, "WebIdentityToken=good-token"));
    assert_null(strstr(log, "\"authorization\"")); /* the token is the proof: unsigned */
    write_file(tok, "bad-token\n");
    assert_int_equal(ch_aws_creds_chain(&c, &err), CH_EIO);
    assert_non_null(strstr(err.msg, "STS AccessDenied"));
}

static void test_imds_v2_uses_a_session_token(void **state)
{
    (void)state;
    clear_env();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    ch_aws_creds c;
    ch_error err = {0};
    if (ch_aws_creds_chain(&c, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(c.source, "imds");
    assert_string_equal(c.access_key, "ASIAIMDS");
    assert_string_equal(c.session_token, "imds-token");
    const char *log = slurp(logfile);
    assert_non_null(strstr(log, "\"method\": \"PUT\", \"path\": \"/latest/api/token\""));
    assert_non_null(strstr(log, "\"x-aws-ec2-metadata-token-ttl-seconds\": \"21600\""));
    assert_non_null(strstr(log, "\"x-aws-ec2-metadata-token\": \"imds-session-token-1\""));
    assert_non_null(strstr(log, "/latest/meta-data/iam/security-credentials/responder-role"));
}

static void test_assume_role_is_signed_and_names_the_permission(void **state)
{
    (void)state;
    clear_env();
    ch_aws_creds base = {0}, out;
    strcpy(base.access_key, "AKIDBASE");
    strcpy(base.secret_key, "basesecret");
    strcpy(base.session_token, "basetoken");
    ch_error err = {0};
    if (ch_aws_assume_role(&base, "arn:aws:iam::444455556666:role/coinhound-responder", "us-east-1",
                           &out, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(out.source, "assume-role");
    assert_string_equal(out.access_key, "ASIASTUBROLE");
    const char *log = slurp(logfile);
    assert_non_null(strstr(log, "AWS4-HMAC-SHA256 Credential=AKIDBASE/"));
    assert_non_null(strstr(log, "/us-east-1/sts/aws4_request, "
                                "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
    assert_non_null(strstr(log, "\"x-amz-security-token\": \"basetoken\""));
    assert_non_null(strstr(log, "RoleArn=arn%3Aaws%3Aiam%3A%3A444455556666%3Arole%2F"));
    assert_int_equal(
        ch_aws_assume_role(&base, "arn:aws:iam::444455556666:role/denied", "us-east-1", &out, &err),
        CH_EIO);
    assert_non_null(strstr(err.msg, "STS AccessDenied"));
    assert_non_null(strstr(err.msg, "needs sts:AssumeRole"));
    /* The stub checks signatures itself: a wrong secret is refused. */
    strcpy(base.secret_key, "wrongsecret");
    assert_int_equal(ch_aws_assume_role(&base, "arn:aws:iam::444455556666:role/coinhound-responder",
                                        "us-east-1", &out, &err),
                     CH_EIO);
    assert_non_null(strstr(err.msg, "SignatureDoesNotMatch"));
}

static void test_sts_parser_refuses_partial_credentials(void **state)
{
    (void)state;
    ch_aws_creds c;
    ch_error err = {0};
    const char *partial = "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A"
                          "</AccessKeyId></Credentials></AssumeRoleResult></AssumeRoleResponse>";
    assert_int_equal(ch_aws_sts_parse(partial, strlen(partial), &c, &err), CH_EPARSE);
    const char *entity = "<Credentials><AccessKeyId>A&xxe;</AccessKeyId><SecretAccessKey>s"
                         "</SecretAccessKey><SessionToken>t</SessionToken></Credentials>";
    assert_int_equal(ch_aws_sts_parse(entity, strlen(entity), &c, &err), CH_EPARSE);
}

static ch_aws_creds base_creds(void)
{
    ch_aws_creds c = {0};
    strcpy(c.access_key, "AKIDBASE");
    strcpy(c.secret_key, "basesecret");
    return c;
}

static int count(const char *log, const char *needle)
{
    int n = 0;
    for (const char *p = log; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_call_retries_throttling_then_succeeds(void **state)
{
    (void)state;
    clear_env();
    ch_aws_creds c = base_creds();
    ch_aws_request r = {"ec2",
                        "ap-south-1",
                        "StopInstances",
                        url,
                        NULL,
                        "Action=StopInstances&InstanceId.1=i-throttle&Version=2016-11-15",
                        5,
                        5};
    ch_buf resp;
    ch_buf_init(&resp, 1 << 20);
    ch_aws_result res;
    ch_error err = {0};
    if (ch_aws_call(&c, &r, &resp, &res, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(res.attempts, 3);
    assert_int_equal(res.status, 200);
    ch_buf_addc(&resp, '\0');
    assert_non_null(strstr(resp.data, "<instanceId>i-throttle</instanceId>"));
    const char *log = slurp(logfile);
    assert_int_equal(count(log, "InstanceId.1=i-throttle"), 3);
    assert_non_null(strstr(log, "/ap-south-1/ec2/aws4_request"));
    /* Always throttled: gives up after max_attempts, saying so. */
    r.body = "Action=StopInstances&InstanceId.1=i-always-throttled&Version=2016-11-15";
    r.max_attempts = 3;
    assert_int_equal(ch_aws_call(&c, &r, &resp, &res, &err), CH_EIO);
    assert_int_equal(res.attempts, 3);
    assert_string_equal(res.code, "RequestLimitExceeded");
    assert_non_null(strstr(err.msg, "after 3 attempts"));
    ch_buf_free(&resp);
}

static void test_refusal_names_the_permission_without_retrying(void **state)
{
    (void)state;
    clear_env();
    ch_aws_creds c = base_creds();
    ch_aws_request r = {"ec2",
                        "ap-south-1",
                        "StopInstances",
                        url,
                        NULL,
                        "Action=StopInstances&InstanceId.1=i-denied&Version=2016-11-15",
                        5,
                        5};
    ch_buf resp;
    ch_buf_init(&resp, 1 << 20);
    ch_aws_result res;
    ch_error err = {0};
    assert_int_equal(ch_aws_call(&c, &r, &resp, &res, &err), CH_EIO);
    assert_int_equal(res.attempts, 1);
    assert_non_null(strstr(err.msg, "AWS refused ec2:StopInstances (UnauthorizedOperation"));
    assert_non_null(strstr(err.msg, "needs ec2:StopInstances"));
    /* JSON 1.1 (Route 53 Resolver): the same, from {"__type": "...#AccessDeniedException"}. */
    ch_aws_request j = {"route53resolver",
                        "ap-south-1",
                        "CreateFirewallDomainList",
                        url,
                        "Route53Resolver.CreateFirewallDomainList",
                        "{\"Name\":\"denied-list\",\"CreatorRequestId\":\"x\"}",
                        5,
                        5};
    assert_int_equal(ch_aws_call(&c, &j, &resp, &res, &err), CH_EIO);
    assert_string_equal(res.code, "AccessDeniedException");
    assert_non_null(strstr(err.msg, "needs route53resolver:CreateFirewallDomainList"));
    j.body = "{\"Name\":\"throttle-list\",\"CreatorRequestId\":\"y\"}";
    if (ch_aws_call(&c, &j, &resp, &res, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(res.attempts, 2);
    /* A wrong secret: the stub's own signature check refuses it. */
    strcpy(c.secret_key, "wrong");
    r.body = "Action=StopInstances&InstanceId.1=i-0aaa&Version=2016-11-15";
    assert_int_equal(ch_aws_call(&c, &r, &resp, &res, &err), CH_EIO);
    assert_string_equal(res.code, "AuthFailure");
    ch_buf_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_environment_comes_first),
        cmocka_unit_test(test_shared_files_with_profiles),
        cmocka_unit_test(test_web_identity_exchanges_the_token),
        cmocka_unit_test(test_imds_v2_uses_a_session_token),
        cmocka_unit_test(test_assume_role_is_signed_and_names_the_permission),
        cmocka_unit_test(test_sts_parser_refuses_partial_credentials),
        cmocka_unit_test(test_call_retries_throttling_then_succeeds),
        cmocka_unit_test(test_refusal_names_the_permission_without_retrying),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
