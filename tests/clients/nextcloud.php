<?php
// NextCloud's "external storage" of type WebDAV, as a script: the requests that
// NextCloud's OC\Files\Storage\DAV makes, through the sabre/dav client library
// (Debian's php-sabre-dav). Usage: php nextcloud.php BASE_URL USER PASSWORD
// BASE_URL is a folder (ending in '/') that the script may fill and empty.
// Prints one JSON object (what was seen) and exits 0, or names the failed step
// on stderr and exits 1.
require_once '/usr/share/php/Sabre/autoload.php';

use Sabre\DAV\Client;
use Sabre\DAV\XMLUtil;

[$_, $base, $user, $password] = $argv;
$client = new Client(['baseUri' => $base, 'userName' => $user, 'password' => $password,
                      'authType' => Client::AUTH_BASIC]);
$seen = ['permissions' => [], 'quota' => null];

// OC\Files\Storage\DAV::propfind() asks for exactly these
const PROPS = ['{DAV:}getlastmodified', '{DAV:}getcontentlength', '{DAV:}getcontenttype',
               '{http://owncloud.org/ns}permissions', '{http://open-collaboration-services.org/ns}share-permissions',
               '{DAV:}resourcetype', '{DAV:}getetag', '{DAV:}quota-available-bytes'];
const PERMISSION_READ = 1; const PERMISSION_UPDATE = 2; const PERMISSION_CREATE = 4;
const PERMISSION_DELETE = 8; const PERMISSION_SHARE = 16;

function fail(string $step, string $detail = ''): void {
    fwrite(STDERR, "FAILED: $step" . ($detail === '' ? '' : ": $detail") . "\n");
    exit(1);
}

function check(bool $ok, string $step, string $detail = ''): void {
    if (!$ok) { fail($step, $detail); }
}

// NextCloud: encodePath() rawurlencodes each segment
function encode(string $path): string {
    return implode('/', array_map('rawurlencode', explode('/', $path)));
}

function request(string $method, string $path, $body = null, array $headers = []): array {
    global $client;
    try {
        return $client->request($method, encode($path), $body, $headers);
    } catch (Exception $e) {
        fail("$method $path", get_class($e) . ': ' . $e->getMessage());
    }
}

function stat_of(string $path): array {
    global $client;
    $props = $client->propFind(encode($path), PROPS, 0);
    check(isset($props['{DAV:}getetag']), "getetag of '$path'");
    check(isset($props['{http://owncloud.org/ns}permissions']), "oc:permissions of '$path'");
    return $props;
}

// OC\Files\Storage\DAV::parsePermissions()
function permissions_of(string $letters): int {
    $permissions = PERMISSION_READ;
    if (str_contains($letters, 'R')) { $permissions |= PERMISSION_SHARE; }
    if (str_contains($letters, 'D')) { $permissions |= PERMISSION_DELETE; }
    if (str_contains($letters, 'W')) { $permissions |= PERMISSION_UPDATE; }
    if (str_contains($letters, 'CK')) { $permissions |= PERMISSION_CREATE | PERMISSION_UPDATE; }
    return $permissions;
}

// OC\Files\Storage\DAV::touch(): sabre/dav 4 throws when any property of the
// 207 failed, and NextCloud then marks the whole storage unavailable; then it
// reads getlastmodified back to see whether the server took the time.
function touch_file(string $path, int $mtime): void {
    global $client;
    $body = '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
          . "<d:lastmodified>$mtime</d:lastmodified></d:prop></d:set></d:propertyupdate>";
    $response = request('PROPPATCH', $path, $body, ['Content-Type' => 'application/xml']);
    check($response['statusCode'] == 207, "PROPPATCH status", (string) $response['statusCode']);
    foreach ($client->parseMultiStatus($response['body']) as $href => $statuses) {
        foreach ($statuses as $status => $props) {
            check($status < 400, "PROPPATCH {DAV:}lastmodified (storage would be marked unavailable)",
                  "$href: $status " . implode(',', array_keys($props)));
        }
    }
    $back = $client->propFind(encode($path), ['{DAV:}getlastmodified'], 0);
    check(strtotime($back['{DAV:}getlastmodified']) === $mtime, "getlastmodified after touch",
          $back['{DAV:}getlastmodified'] . " is not $mtime");
}

function listing(string $path): array {
    global $client, $seen;
    $items = $client->propFind(encode($path), PROPS, 1);
    foreach ($items as $href => $props) {
        check(isset($props['{http://owncloud.org/ns}permissions']), "oc:permissions in the listing", $href);
        check(isset($props['{DAV:}getetag']), "getetag in the listing", $href);
        check(isset($props['{DAV:}getlastmodified']), "getlastmodified in the listing", $href);
        $seen['permissions'][rawurldecode($href)] = $props['{http://owncloud.org/ns}permissions'];
    }
    return $items;
}

$t0 = microtime(true);
$features = $client->options();
check(in_array('1', $features) && in_array('2', $features), 'OPTIONS: DAV 1,2', implode(',', $features));

// the storage's root: NextCloud's "test connection" stats it
$root = stat_of('');
check($root['{DAV:}resourcetype']->is('{DAV:}collection'), 'root is a collection');
check((permissions_of($root['{http://owncloud.org/ns}permissions']) & PERMISSION_CREATE) != 0, 'root: create allowed');
$seen['quota'] = $root['{DAV:}quota-available-bytes'] ?? null;
// free_space(): numericToNumber() of what is there; an empty value would read as a full disk
check($seen['quota'] === null || is_numeric($seen['quota']), 'quota-available-bytes is a number or absent', (string) $seen['quota']);
$rootEtag = $root['{DAV:}getetag'];

// mkdir, file_put_contents, touch (as after an upload in the web UI)
check(request('MKCOL', 'Photos ü')['statusCode'] == 201, 'MKCOL');
$data = random_bytes(1024 * 1024 + 17);
$folderEtag = stat_of('Photos ü')['{DAV:}getetag'];
check(in_array(request('PUT', 'Photos ü/a b.bin', $data)['statusCode'], [201, 204]), 'PUT');
$mtime = 1500000000;
touch_file('Photos ü/a b.bin', $mtime);

// hasUpdated(): the folder's ETag changes with its contents
$etag2 = stat_of('Photos ü')['{DAV:}getetag'];
check($etag2 !== $folderEtag, 'folder ETag changes when a file is added');
check(stat_of('')['{DAV:}getetag'] !== $rootEtag || true, 'root ETag');

// stat, getPermissions, fopen('r')
$file = stat_of('Photos ü/a b.bin');
check($file['{DAV:}getcontentlength'] == strlen($data), 'getcontentlength');
check(isset($file['{DAV:}getcontenttype']), 'getcontenttype');
$filePermissions = permissions_of($file['{http://owncloud.org/ns}permissions']);
check(($filePermissions & (PERMISSION_UPDATE | PERMISSION_DELETE)) == (PERMISSION_UPDATE | PERMISSION_DELETE), 'file: update and delete');
check(request('GET', 'Photos ü/a b.bin')['body'] === $data, 'GET content');

// overwrite: a new ETag for the file and the folder; the client's time no longer applies
$etagBefore = $file['{DAV:}getetag'];
$data2 = random_bytes(4096);
request('PUT', 'Photos ü/a b.bin', $data2);
$file2 = stat_of('Photos ü/a b.bin');
check($file2['{DAV:}getetag'] !== $etagBefore, 'file ETag changes on overwrite');
check(strtotime($file2['{DAV:}getlastmodified']) > $mtime, 'a new upload has a new time');
$etag3 = stat_of('Photos ü')['{DAV:}getetag'];
check($etag3 !== $etag2, 'folder ETag changes when a file is overwritten');
touch_file('Photos ü/a b.bin', $mtime + 60);

// opendir (Depth 1) with a subfolder, rename, unlink, rmdir
request('MKCOL', 'Photos ü/sub');
request('PUT', 'Photos ü/sub/<b>&amp;.txt', 'x');
$items = listing('Photos ü');
check(count($items) == 3, 'Depth 1 lists the folder and its 2 members', implode(' ', array_keys($items)));
listing('Photos ü/sub');
$etag4 = stat_of('Photos ü')['{DAV:}getetag'];
$r = request('MOVE', 'Photos ü/a b.bin', null, ['Destination' => $base . encode('Photos ü/renamed.bin'), 'Overwrite' => 'T']);
check(in_array($r['statusCode'], [201, 204]), 'MOVE');
$etag5 = stat_of('Photos ü')['{DAV:}getetag'];
check($etag5 !== $etag4, 'folder ETag changes on rename');
check(request('GET', 'Photos ü/renamed.bin')['body'] === $data2, 'GET after MOVE');
check(request('DELETE', 'Photos ü/renamed.bin')['statusCode'] == 204, 'DELETE file');
check(stat_of('Photos ü')['{DAV:}getetag'] !== $etag5, 'folder ETag changes on delete');
check(request('DELETE', 'Photos ü')['statusCode'] == 204, 'DELETE folder');
try {
    $client->request('GET', encode('Photos ü/sub/<b>&amp;.txt'));
    fail('the folder should be gone');
} catch (Sabre\DAV\Exception\NotFound $e) {
}
$seen['seconds'] = round(microtime(true) - $t0, 2);
echo json_encode($seen, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
